package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
)

func newKeyAliasCmd(o *clientOptions) *cobra.Command {
	cmd := groupCmd(&cobra.Command{
		Use:   "alias",
		Short: "Manage aliases (friendly names for keys)",
		Long: `Manage aliases: names of the form alias/NAME that point at a key and can
be used wherever --key is accepted. Repointing an alias moves its users to
another key without changing their configuration.`,
		Example: `  meridian key alias create --insecure --alias alias/orders --key 1234abcd-...
  meridian key alias list --insecure`,
	})
	cmd.AddCommand(newAliasCreateCmd(o), newAliasUpdateCmd(o), newAliasDeleteCmd(o), newAliasListCmd(o))
	return cmd
}

func newAliasCreateCmd(o *clientOptions) *cobra.Command {
	var req apiv1.CreateAliasRequest
	cmd := &cobra.Command{
		Use:     "create",
		Short:   "Create an alias for a key",
		Long:    `Create an alias (alias/NAME) pointing at a key. Alias names are unique.`,
		Example: `  meridian key alias create --insecure --alias alias/orders --key 1234abcd-...`,
	}
	return aliasTargetLeaf(o, cmd, &req.AliasName, &req.TargetKeyId, "create", "the key it points at (id or full name)",
		func(ctx context.Context, c *client.Client) (*apiv1.WriteResponse, error) {
			return c.CreateAlias(ctx, &req)
		})
}

func newAliasUpdateCmd(o *clientOptions) *cobra.Command {
	var req apiv1.UpdateAliasRequest
	cmd := &cobra.Command{
		Use:     "update",
		Short:   "Point an alias at another key",
		Long:    `Point an existing alias at another key of the same spec and usage.`,
		Example: `  meridian key alias update --insecure --alias alias/orders --key 5678efgh-...`,
	}
	return aliasTargetLeaf(o, cmd, &req.AliasName, &req.TargetKeyId, "repoint", "the key it should point at (id or full name)",
		func(ctx context.Context, c *client.Client) (*apiv1.WriteResponse, error) {
			return c.UpdateAlias(ctx, &req)
		})
}

// aliasTargetLeaf finishes create and update, which differ only in their
// request type: both take an alias and the key it should point at.
func aliasTargetLeaf(o *clientOptions, cmd *cobra.Command, alias, target *string, verb, keyHelp string,
	send func(context.Context, *client.Client) (*apiv1.WriteResponse, error)) *cobra.Command {
	cmd.Flags().StringVar(alias, "alias", "", "the `alias/NAME` to "+verb)
	cmd.Flags().StringVar(target, "key", "", keyHelp)
	return leaf(o, cmd, nil, func(*cobra.Command) (callFn, error) {
		if err := requireFlag("alias", *alias); err != nil {
			return nil, err
		}
		if err := requireFlag("key", *target); err != nil {
			return nil, err
		}
		return aliasWrite(*alias, send), nil
	})
}

func newAliasDeleteCmd(o *clientOptions) *cobra.Command {
	var req apiv1.DeleteAliasRequest
	cmd := &cobra.Command{
		Use:     "delete",
		Short:   "Delete an alias",
		Long:    `Delete an alias. The key it pointed at is not affected.`,
		Example: `  meridian key alias delete --insecure --alias alias/orders`,
	}
	cmd.Flags().StringVar(&req.AliasName, "alias", "", "the `alias/NAME` to delete")
	return leaf(o, cmd, nil, func(*cobra.Command) (callFn, error) {
		if err := requireFlag("alias", req.AliasName); err != nil {
			return nil, err
		}
		return aliasWrite(req.AliasName, func(ctx context.Context, c *client.Client) (*apiv1.WriteResponse, error) {
			return c.DeleteAlias(ctx, &req)
		}), nil
	})
}

func aliasWrite(alias string, do func(context.Context, *client.Client) (*apiv1.WriteResponse, error)) callFn {
	return func(ctx context.Context, c *client.Client) (*result, error) {
		resp, err := do(ctx, c)
		if err != nil {
			return nil, err
		}
		r := &result{msg: resp}
		r.add("AliasName", alias)
		r.add("TargetKeyId", resp.GetKeyId()) // resolved by the server; none for delete
		r.addCommit(resp.GetCommitIndex())
		return r, nil
	}
}

func newAliasListCmd(o *clientOptions) *cobra.Command {
	var req apiv1.ListAliasesRequest
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List aliases",
		Long:  `List aliases, all of them or only one key's (--key), one page at a time.`,
		Example: `  meridian key alias list --insecure
  meridian key alias list --insecure --key 1234abcd-... -o json`,
	}
	cmd.Flags().StringVar(&req.KeyId, "key", "", "only this key's aliases (optional)")
	addPageFlags(cmd, &req.Limit, &req.Marker)
	return leaf(o, cmd, nil, func(*cobra.Command) (callFn, error) {
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.ListAliases(ctx, &req)
			if err != nil {
				return nil, err
			}
			t := &table{header: []string{"ALIAS", "KEY ID", "CREATED"}}
			for _, a := range resp.GetAliases() {
				created := ""
				if a.GetCreationDate() != nil {
					created = a.GetCreationDate().AsTime().UTC().Format(time.RFC3339)
				}
				t.rows = append(t.rows, []string{a.GetAliasName(), a.GetTargetKeyId(), created})
			}
			return pageResult(resp, t), nil
		}, nil
	})
}
