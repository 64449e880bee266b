package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
)

// addKeyCommands adds `meridian key ...`, the client for every operation of
// the KeyManagement API.
func addKeyCommands(root *cobra.Command) {
	key := groupCmd(&cobra.Command{
		Use:   "key",
		Short: "Manage keys and use them for cryptographic operations",
		Long: `Manage keys and use them, talking to a Meridian node's gRPC API.

Name a key with --key: its id, an alias ("alias/orders") or its full name
("meridian:key/<id>"). Binary inputs are read from --NAME-file PATH ("-" for
stdin) or given inline; ciphertexts, signatures and MACs are base64 unless
--binary. Binary outputs print as base64; --raw-out FILE writes raw bytes.
Use -o json for scripts: the response's fields in lowerCamelCase, bytes as
base64, enums and numbers spelt as in the text output; errors then come as
{"error": {"code": ..., "message": ...}} on stderr.

Every connection and output flag may be set in the environment instead, as
MERIDIAN_<FLAG> (MERIDIAN_ADDR, MERIDIAN_INSECURE=1, MERIDIAN_OUTPUT=json,
...); a flag on the command line wins. --region warns when no discovered
node is in that region.

Plaintext gRPC needs --insecure until TLS client configuration arrives.`,
		Example: `  meridian key create --insecure --description orders
  meridian key encrypt --insecure --key alias/orders --plaintext hello`,
	})
	o := addClientFlags(key)
	key.AddCommand(
		newKeyCreateCmd(o), newKeyListCmd(o), newKeyDescribeCmd(o),
		newKeyUpdateDescriptionCmd(o), newKeyEnableCmd(o), newKeyDisableCmd(o),
		newKeyScheduleDeletionCmd(o), newKeyCancelDeletionCmd(o),
		newKeyRotateCmd(o), newKeyRotationCmd(o),
		newKeyEncryptCmd(o), newKeyDecryptCmd(o), newKeyReEncryptCmd(o),
		newKeyGenerateDataKeyCmd(o), newKeyGenerateDataKeyPairCmd(o), newKeyRandomCmd(o),
		newKeySignCmd(o), newKeyVerifyCmd(o), newKeyGetPublicKeyCmd(o),
		newKeyGenerateMacCmd(o), newKeyVerifyMacCmd(o),
		newKeyAliasCmd(o), newKeyTagCmd(o),
	)
	root.AddCommand(key)
}

const keyFlagHelp = "the key: id, alias (alias/NAME) or full name"

// keyLeaf is leaf for a command that acts on one key: it adds the required
// --key flag and checks it before prepare runs.
func keyLeaf(o *clientOptions, cmd *cobra.Command, keyID *string, raw *rawOut, prepare func(*cobra.Command) (callFn, error)) *cobra.Command {
	cmd.Flags().StringVar(keyID, "key", "", keyFlagHelp)
	return leaf(o, cmd, raw, func(c *cobra.Command) (callFn, error) {
		if err := requireFlag("key", *keyID); err != nil {
			return nil, err
		}
		return prepare(c)
	})
}

// addPageFlags registers a list command's paging flags.
func addPageFlags(cmd *cobra.Command, limit *uint32, marker *string) {
	cmd.Flags().Uint32Var(limit, "limit", 0, "page size, 1-1000 (default 100)")
	cmd.Flags().StringVar(marker, "marker", "", "resume after this NextMarker")
}

// page is what every list response has: its NextMarker when more remain.
type page interface {
	proto.Message
	GetTruncated() bool
	GetNextMarker() string
}

// pageResult prints a list response as t, followed by the NextMarker to
// pass to --marker when the listing was truncated.
func pageResult(resp page, t *table) *result {
	r := &result{msg: resp, table: t}
	if resp.GetTruncated() {
		r.add("NextMarker", resp.GetNextMarker())
	}
	return r
}

func requireFlag(name, v string) error {
	if strings.TrimSpace(v) == "" {
		return usageErrorf("--%s is required", name)
	}
	return nil
}

// callFn makes the API call of a command whose inputs are already read.
type callFn func(context.Context, *client.Client) (*result, error)

// leaf makes cmd runnable with the common shape: no positional arguments;
// prepare checks flags and reads inputs (usage errors come out before any
// connection is made), then the call runs on a connected client and its
// result is printed. raw is the command's --raw-out flag, or nil.
func leaf(o *clientOptions, cmd *cobra.Command, raw *rawOut, prepare func(*cobra.Command) (callFn, error)) *cobra.Command {
	cmd.Args = noArgs
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		if err := o.check(); err != nil {
			return err
		}
		var r rawOut
		if raw != nil {
			r = *raw
			if err := r.check(o); err != nil {
				return err
			}
		}
		do, err := prepare(c)
		if err != nil {
			return err
		}
		return o.call(c, func(ctx context.Context, cl *client.Client) error {
			res, err := do(ctx, cl)
			if err != nil {
				return err
			}
			return emit(c, o, r, res)
		})
	}
	return cmd
}

func addMetadata(r *result, m *apiv1.KeyMetadata) {
	r.add("KeyId", m.GetKeyId())
	r.add("KeyName", m.GetKeyName())
	r.add("Description", m.GetDescription())
	r.add("KeySpec", enumText(m.GetKeySpec()))
	r.add("KeyUsage", enumText(m.GetKeyUsage()))
	r.add("KeyState", enumText(m.GetKeyState()))
	r.addBool("Enabled", m.GetEnabled())
	r.add("Origin", enumText(m.GetOrigin()))
	r.add("ProtectionLevel", enumText(m.GetProtectionLevel()))
	r.addTime("CreationDate", m.GetCreationDate())
	r.addUint("CurrentKeyVersion", m.GetCurrentKeyVersion())
	r.addBool("KeyRotationEnabled", m.GetKeyRotationEnabled())
	r.addUint("RotationPeriodInDays", m.GetRotationPeriodInDays())
	r.addTime("NextRotationDate", m.GetNextRotationDate())
	r.addTime("DeletionDate", m.GetDeletionDate())
	r.addUint("PendingDeletionWindowInDays", m.GetPendingDeletionWindowInDays())
	r.add("EncryptionAlgorithms", enumList(m.GetEncryptionAlgorithms()))
	r.add("SigningAlgorithms", enumList(m.GetSigningAlgorithms()))
	r.add("MacAlgorithms", enumList(m.GetMacAlgorithms()))
}
