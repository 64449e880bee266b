package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
)

func newKeyRotateCmd(o *clientOptions) *cobra.Command {
	var req apiv1.RotateKeyOnDemandRequest
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate a key now (add a new key version)",
		Long: `Rotate a key on demand: new encryptions use a new key version, and
ciphertexts made under every earlier version still decrypt.`,
		Example: `  meridian key rotate --insecure --key alias/orders`,
	}
	return keyLeaf(o, cmd, &req.KeyId, nil, func(*cobra.Command) (callFn, error) {
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.RotateKeyOnDemand(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			r.add("KeyId", resp.GetKeyId())
			r.addUint("KeyVersion", resp.GetKeyVersion())
			r.addCommit(resp.GetCommitIndex())
			return r, nil
		}, nil
	})
}

func newKeyRotationCmd(o *clientOptions) *cobra.Command {
	cmd := groupCmd(&cobra.Command{
		Use:   "rotation",
		Short: "Manage automatic key rotation",
		Long:  `Turn automatic rotation on or off, show its status and list past rotations.`,
		Example: `  meridian key rotation enable --insecure --key alias/orders --period-days 180
  meridian key rotation status --insecure --key alias/orders`,
	})
	cmd.AddCommand(newRotationEnableCmd(o), newRotationDisableCmd(o), newRotationStatusCmd(o), newRotationListCmd(o))
	return cmd
}

func newRotationEnableCmd(o *clientOptions) *cobra.Command {
	var req apiv1.EnableKeyRotationRequest
	cmd := &cobra.Command{
		Use:     "enable",
		Short:   "Rotate a key automatically every period",
		Long:    `Turn on automatic rotation with a period of 90-2560 days (default 365).`,
		Example: `  meridian key rotation enable --insecure --key alias/orders --period-days 180`,
	}
	cmd.Flags().Uint32Var(&req.RotationPeriodInDays, "period-days", 0, "rotation period in days, 90-2560 (default 365)")
	return keyLeaf(o, cmd, &req.KeyId, nil, func(*cobra.Command) (callFn, error) {
		return writeCall(func(ctx context.Context, c *client.Client) (*apiv1.WriteResponse, error) {
			return c.EnableKeyRotation(ctx, &req)
		}), nil
	})
}

func newRotationDisableCmd(o *clientOptions) *cobra.Command {
	var req apiv1.DisableKeyRotationRequest
	cmd := &cobra.Command{
		Use:     "disable",
		Short:   "Stop rotating a key automatically",
		Long:    `Turn off automatic rotation. Existing versions are kept.`,
		Example: `  meridian key rotation disable --insecure --key alias/orders`,
	}
	return keyLeaf(o, cmd, &req.KeyId, nil, func(*cobra.Command) (callFn, error) {
		return writeCall(func(ctx context.Context, c *client.Client) (*apiv1.WriteResponse, error) {
			return c.DisableKeyRotation(ctx, &req)
		}), nil
	})
}

func newRotationStatusCmd(o *clientOptions) *cobra.Command {
	var req apiv1.GetKeyRotationStatusRequest
	cmd := &cobra.Command{
		Use:     "status",
		Short:   "Show a key's rotation settings",
		Long:    `Show whether automatic rotation is on, its period and the next rotation date.`,
		Example: `  meridian key rotation status --insecure --key alias/orders`,
	}
	return keyLeaf(o, cmd, &req.KeyId, nil, func(*cobra.Command) (callFn, error) {
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.GetKeyRotationStatus(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			r.add("KeyId", resp.GetKeyId())
			r.addBool("KeyRotationEnabled", resp.GetKeyRotationEnabled())
			r.addUint("RotationPeriodInDays", resp.GetRotationPeriodInDays())
			r.addTime("NextRotationDate", resp.GetNextRotationDate())
			r.addTime("OnDemandRotationStartDate", resp.GetOnDemandRotationStartDate())
			return r, nil
		}, nil
	})
}

func newRotationListCmd(o *clientOptions) *cobra.Command {
	var req apiv1.ListKeyRotationsRequest
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List a key's rotations",
		Long:    `List a key's past rotations, automatic and on demand, one page at a time.`,
		Example: `  meridian key rotation list --insecure --key alias/orders`,
	}
	addPageFlags(cmd, &req.Limit, &req.Marker)
	return keyLeaf(o, cmd, &req.KeyId, nil, func(*cobra.Command) (callFn, error) {
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.ListKeyRotations(ctx, &req)
			if err != nil {
				return nil, err
			}
			t := &table{header: []string{"KEY ID", "VERSION", "DATE", "TYPE"}}
			for _, k := range resp.GetRotations() {
				t.rows = append(t.rows, []string{k.GetKeyId(), uitoa(k.GetKeyVersion()),
					k.GetRotationDate().AsTime().UTC().Format(time.RFC3339), enumText(k.GetRotationType())})
			}
			return pageResult(resp, t), nil
		}, nil
	})
}
