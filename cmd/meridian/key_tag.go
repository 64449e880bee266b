package main

import (
	"context"

	"github.com/spf13/cobra"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
)

func newKeyTagCmd(o *clientOptions) *cobra.Command {
	cmd := groupCmd(&cobra.Command{
		Use:   "tag",
		Short: "Manage a key's tags",
		Long:  `Add, remove and list a key's tags (KEY=VALUE labels for your own bookkeeping).`,
		Example: `  meridian key tag add --insecure --key alias/orders --tag team=payments --tag env=prod
  meridian key tag list --insecure --key alias/orders`,
	})
	cmd.AddCommand(newTagAddCmd(o), newTagRemoveCmd(o), newTagListCmd(o))
	return cmd
}

func newTagAddCmd(o *clientOptions) *cobra.Command {
	var (
		req  apiv1.TagResourceRequest
		tags []string
	)
	cmd := &cobra.Command{
		Use:     "add",
		Short:   "Add or overwrite tags on a key",
		Long:    `Add tags to a key; a tag whose key already exists gets the new value.`,
		Example: `  meridian key tag add --insecure --key alias/orders --tag team=payments --tag env=prod`,
	}
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tag as `KEY=VALUE` (repeatable, at least one)")
	return keyLeaf(o, cmd, &req.KeyId, nil, func(*cobra.Command) (callFn, error) {
		if len(tags) == 0 {
			return nil, usageErrorf("at least one --tag is required")
		}
		t, err := parseTags(tags)
		if err != nil {
			return nil, err
		}
		req.Tags = t
		return writeCall(func(ctx context.Context, c *client.Client) (*apiv1.WriteResponse, error) {
			return c.TagResource(ctx, &req)
		}), nil
	})
}

func newTagRemoveCmd(o *clientOptions) *cobra.Command {
	var req apiv1.UntagResourceRequest
	cmd := &cobra.Command{
		Use:     "remove",
		Short:   "Remove tags from a key",
		Long:    `Remove tags from a key by tag key.`,
		Example: `  meridian key tag remove --insecure --key alias/orders --tag-key env`,
	}
	cmd.Flags().StringArrayVar(&req.TagKeys, "tag-key", nil, "tag `KEY` to remove (repeatable, at least one)")
	return keyLeaf(o, cmd, &req.KeyId, nil, func(*cobra.Command) (callFn, error) {
		if len(req.TagKeys) == 0 {
			return nil, usageErrorf("at least one --tag-key is required")
		}
		return writeCall(func(ctx context.Context, c *client.Client) (*apiv1.WriteResponse, error) {
			return c.UntagResource(ctx, &req)
		}), nil
	})
}

func newTagListCmd(o *clientOptions) *cobra.Command {
	var req apiv1.ListResourceTagsRequest
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List a key's tags",
		Long:    `List a key's tags, one page at a time.`,
		Example: `  meridian key tag list --insecure --key alias/orders`,
	}
	addPageFlags(cmd, &req.Limit, &req.Marker)
	return keyLeaf(o, cmd, &req.KeyId, nil, func(*cobra.Command) (callFn, error) {
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.ListResourceTags(ctx, &req)
			if err != nil {
				return nil, err
			}
			t := &table{header: []string{"KEY", "VALUE"}}
			for _, tag := range resp.GetTags() {
				t.rows = append(t.rows, []string{tag.GetTagKey(), tag.GetTagValue()})
			}
			return pageResult(resp, t), nil
		}, nil
	})
}
