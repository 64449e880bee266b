package main

import (
	"context"

	"github.com/spf13/cobra"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
)

func newKeyGenerateDataKeyCmd(o *clientOptions) *cobra.Command {
	var (
		req         apiv1.GenerateDataKeyRequest
		ctxKV       []string
		raw         rawOut
		noPlaintext bool
	)
	cmd := &cobra.Command{
		Use:   "generate-data-key",
		Short: "Generate a data key for envelope encryption",
		Long: `Generate a data key: its plaintext (to encrypt your data locally, then
discard) and the same key encrypted under --key (to store beside the data;
decrypt gives the plaintext back). Size with --spec AES_256 (default) or
AES_128, or --bytes N (1-1024). --no-plaintext returns only the encrypted
copy. --raw-out writes the encrypted data key.`,
		Example: `  meridian key generate-data-key --insecure --key alias/orders
  meridian key generate-data-key --insecure --key alias/orders --bytes 64 --no-plaintext --raw-out dk.bin`,
	}
	addEnumFlag(cmd.Flags(), &req.KeySpec, "spec", "data key spec", "data key spec (default AES_256)")
	cmd.Flags().Uint32Var(&req.NumberOfBytes, "bytes", 0, "data key length in bytes, 1-1024 (instead of --spec)")
	cmd.Flags().BoolVar(&noPlaintext, "no-plaintext", false, "return only the encrypted data key")
	cmd.Flags().StringArrayVar(&ctxKV, "context", nil, contextHelp)
	addRawOutFlag(cmd, &raw, "encrypted data key")
	return keyLeaf(o, cmd, &req.KeyId, &raw, func(c *cobra.Command) (callFn, error) {
		var err error
		bytesSet := c.Flags().Changed("bytes")
		if bytesSet && c.Flags().Changed("spec") {
			return nil, usageErrorf("give either --spec or --bytes, not both")
		}
		if bytesSet && req.NumberOfBytes == 0 {
			return nil, usageErrorf("--bytes must be 1-1024")
		}
		if !bytesSet && req.KeySpec == apiv1.DataKeySpec_DATA_KEY_SPEC_UNSPECIFIED {
			req.KeySpec = apiv1.DataKeySpec_DATA_KEY_SPEC_AES_256
		}
		if req.EncryptionContext, err = parseContext("context", ctxKV); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client) (*result, error) {
			gen := c.GenerateDataKey
			if noPlaintext {
				gen = c.GenerateDataKeyWithoutPlaintext
			}
			resp, err := gen(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			r.addBinary("CiphertextBlob", resp.GetCiphertextBlob(), true)
			r.addBinary("Plaintext", resp.GetPlaintext(), false)
			r.add("KeyId", resp.GetKeyId())
			r.addUint("KeyVersion", resp.GetKeyVersion())
			return r, nil
		}, nil
	})
}

func newKeyGenerateDataKeyPairCmd(o *clientOptions) *cobra.Command {
	var (
		req         apiv1.GenerateDataKeyPairRequest
		ctxKV       []string
		raw         rawOut
		noPlaintext bool
	)
	cmd := &cobra.Command{
		Use:   "generate-data-key-pair",
		Short: "Generate an asymmetric data key pair",
		Long: `Generate an RSA or ECC key pair: the public key (PKIX DER), the private
key (PKCS#8 DER) in plaintext unless --no-plaintext, and the private key
encrypted under --key. --raw-out writes the encrypted private key.`,
		Example: `  meridian key generate-data-key-pair --insecure --key alias/orders --spec ECC_NIST_P256
  meridian key generate-data-key-pair --insecure --key alias/orders --spec RSA_2048 --no-plaintext -o json`,
	}
	addEnumFlag(cmd.Flags(), &req.KeyPairSpec, "spec", "key pair spec", "key pair spec (required)")
	cmd.Flags().BoolVar(&noPlaintext, "no-plaintext", false, "do not return the plaintext private key")
	cmd.Flags().StringArrayVar(&ctxKV, "context", nil, contextHelp)
	addRawOutFlag(cmd, &raw, "encrypted private key")
	return keyLeaf(o, cmd, &req.KeyId, &raw, func(c *cobra.Command) (callFn, error) {
		var err error
		if req.KeyPairSpec == apiv1.DataKeyPairSpec_DATA_KEY_PAIR_SPEC_UNSPECIFIED {
			return nil, usageErrorf("--spec is required")
		}
		if req.EncryptionContext, err = parseContext("context", ctxKV); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client) (*result, error) {
			gen := c.GenerateDataKeyPair
			if noPlaintext {
				gen = c.GenerateDataKeyPairWithoutPlaintext
			}
			resp, err := gen(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			r.addBinary("PrivateKeyCiphertextBlob", resp.GetPrivateKeyCiphertextBlob(), true)
			r.addBinary("PrivateKeyPlaintext", resp.GetPrivateKeyPlaintext(), false)
			r.addBinary("PublicKey", resp.GetPublicKey(), false)
			r.add("KeyId", resp.GetKeyId())
			r.addUint("KeyVersion", resp.GetKeyVersion())
			r.add("KeyPairSpec", enumText(resp.GetKeyPairSpec()))
			return r, nil
		}, nil
	})
}
