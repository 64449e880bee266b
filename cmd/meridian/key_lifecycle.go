package main

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
)

func newKeyCreateCmd(o *clientOptions) *cobra.Command {
	var (
		req  apiv1.CreateKeyRequest
		tags []string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a key",
		Long: `Create a key. Without flags it is a SYMMETRIC_DEFAULT (AES-256-GCM)
ENCRYPT_DECRYPT key protected at the SOFTWARE level. The request carries a
fresh request id, so the client's retries never create a second key.`,
		Example: `  meridian key create --insecure --description "orders"
  meridian key create --insecure --spec ECC_NIST_P256 --usage SIGN_VERIFY --tag team=payments
  meridian key create --insecure --spec HMAC_256 -o json`,
	}
	fs := cmd.Flags()
	fs.StringVar(&req.Description, "description", "", "free-text description")
	addEnumFlag(fs, &req.KeySpec, "spec", "key spec", "key spec (default SYMMETRIC_DEFAULT)")
	addEnumFlag(fs, &req.KeyUsage, "usage", "key usage", "key usage (default: the spec's natural usage)")
	addEnumFlag(fs, &req.ProtectionLevel, "protection-level", "protection level", "protection level (default SOFTWARE)")
	fs.StringArrayVar(&tags, "tag", nil, "tag as `KEY=VALUE` (repeatable)")
	return leaf(o, cmd, nil, func(*cobra.Command) (callFn, error) {
		t, err := parseTags(tags)
		if err != nil {
			return nil, err
		}
		req.Tags = t
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.CreateKey(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			addMetadata(r, resp.GetKeyMetadata())
			r.addCommit(resp.GetCommitIndex())
			return r, nil
		}, nil
	})
}

func newKeyListCmd(o *clientOptions) *cobra.Command {
	var req apiv1.ListKeysRequest
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List keys",
		Long: `List keys, one page at a time. When more remain, the output ends with a
NextMarker to pass to --marker.`,
		Example: `  meridian key list --insecure
  meridian key list --insecure --limit 10 --marker "$NEXT" -o json`,
	}
	addPageFlags(cmd, &req.Limit, &req.Marker)
	return leaf(o, cmd, nil, func(*cobra.Command) (callFn, error) {
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.ListKeys(ctx, &req)
			if err != nil {
				return nil, err
			}
			t := &table{header: []string{"KEY ID", "KEY NAME"}}
			for _, k := range resp.GetKeys() {
				t.rows = append(t.rows, []string{k.GetKeyId(), k.GetKeyName()})
			}
			return pageResult(resp, t), nil
		}, nil
	})
}

func newKeyDescribeCmd(o *clientOptions) *cobra.Command {
	var req apiv1.DescribeKeyRequest
	cmd := &cobra.Command{
		Use:     "describe",
		Short:   "Show a key's metadata",
		Long:    `Show a key's metadata: spec, usage, state, versions, rotation and deletion dates.`,
		Example: `  meridian key describe --insecure --key alias/orders`,
	}
	return keyLeaf(o, cmd, &req.KeyId, nil, func(*cobra.Command) (callFn, error) {
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.DescribeKey(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			addMetadata(r, resp.GetKeyMetadata())
			return r, nil
		}, nil
	})
}

func newKeyUpdateDescriptionCmd(o *clientOptions) *cobra.Command {
	var req apiv1.UpdateKeyDescriptionRequest
	cmd := &cobra.Command{
		Use:     "update-description",
		Short:   "Replace a key's description",
		Long:    `Replace a key's description; --description "" clears it.`,
		Example: `  meridian key update-description --insecure --key alias/orders --description "orders, EU"`,
	}
	cmd.Flags().StringVar(&req.Description, "description", "", "the new description (required; may be empty)")
	return keyLeaf(o, cmd, &req.KeyId, nil, func(c *cobra.Command) (callFn, error) {
		if !c.Flags().Changed("description") {
			return nil, usageErrorf("--description is required")
		}
		return writeCall(func(ctx context.Context, c *client.Client) (*apiv1.WriteResponse, error) {
			return c.UpdateKeyDescription(ctx, &req)
		}), nil
	})
}

// writeCall wraps a write that returns only the key it acted on and a
// commit index. The KeyId printed is the server's: the id the --key alias
// or name resolved to, never an echo of --key (an older server that sends
// none gets no KeyId line).
func writeCall(do func(context.Context, *client.Client) (*apiv1.WriteResponse, error)) callFn {
	return func(ctx context.Context, c *client.Client) (*result, error) {
		resp, err := do(ctx, c)
		if err != nil {
			return nil, err
		}
		r := &result{msg: resp}
		r.add("KeyId", resp.GetKeyId())
		r.addCommit(resp.GetCommitIndex())
		return r, nil
	}
}

func newKeyEnableCmd(o *clientOptions) *cobra.Command {
	var req apiv1.EnableKeyRequest
	cmd := &cobra.Command{
		Use:     "enable",
		Short:   "Enable a disabled key",
		Long:    `Enable a disabled key so that it serves cryptographic operations again.`,
		Example: `  meridian key enable --insecure --key alias/orders`,
	}
	return keyLeaf(o, cmd, &req.KeyId, nil, func(*cobra.Command) (callFn, error) {
		return writeCall(func(ctx context.Context, c *client.Client) (*apiv1.WriteResponse, error) {
			return c.EnableKey(ctx, &req)
		}), nil
	})
}

func newKeyDisableCmd(o *clientOptions) *cobra.Command {
	var req apiv1.DisableKeyRequest
	cmd := &cobra.Command{
		Use:   "disable",
		Short: "Disable a key",
		Long: `Disable a key: every cryptographic operation with it fails with
DisabledException until it is enabled again. Nothing is deleted.`,
		Example: `  meridian key disable --insecure --key alias/orders`,
	}
	return keyLeaf(o, cmd, &req.KeyId, nil, func(*cobra.Command) (callFn, error) {
		return writeCall(func(ctx context.Context, c *client.Client) (*apiv1.WriteResponse, error) {
			return c.DisableKey(ctx, &req)
		}), nil
	})
}

func newKeyScheduleDeletionCmd(o *clientOptions) *cobra.Command {
	var req apiv1.ScheduleKeyDeletionRequest
	cmd := &cobra.Command{
		Use:   "schedule-deletion",
		Short: "Schedule a key's deletion after a waiting period",
		Long: `Schedule a key's deletion after --days (7-30, default 30). Until then the
key is PendingDeletion: it refuses every operation with
KMSInvalidStateException, and cancel-deletion brings it back (Disabled).`,
		Example: `  meridian key schedule-deletion --insecure --key alias/old --days 7`,
	}
	cmd.Flags().Uint32Var(&req.PendingWindowInDays, "days", 30, "waiting period in days, 7-30")
	return keyLeaf(o, cmd, &req.KeyId, nil, func(*cobra.Command) (callFn, error) {
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.ScheduleKeyDeletion(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			r.add("KeyId", resp.GetKeyId())
			r.add("KeyState", enumText(resp.GetKeyState()))
			r.addTime("DeletionDate", resp.GetDeletionDate())
			r.addUint("PendingWindowInDays", resp.GetPendingWindowInDays())
			r.addCommit(resp.GetCommitIndex())
			return r, nil
		}, nil
	})
}

func newKeyCancelDeletionCmd(o *clientOptions) *cobra.Command {
	var req apiv1.CancelKeyDeletionRequest
	cmd := &cobra.Command{
		Use:     "cancel-deletion",
		Short:   "Cancel a scheduled deletion",
		Long:    `Cancel a key's scheduled deletion. The key returns in the Disabled state; enable it to use it.`,
		Example: `  meridian key cancel-deletion --insecure --key alias/old`,
	}
	return keyLeaf(o, cmd, &req.KeyId, nil, func(*cobra.Command) (callFn, error) {
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.CancelKeyDeletion(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			r.add("KeyId", resp.GetKeyId())
			r.addCommit(resp.GetCommitIndex())
			return r, nil
		}, nil
	})
}

func uitoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
