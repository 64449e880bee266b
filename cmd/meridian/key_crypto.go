package main

import (
	"context"

	"github.com/spf13/cobra"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
)

const contextHelp = "encryption context entry `KEY=VALUE` (repeatable); decrypt needs the same entries"

// maxEncryptPlaintext is Encrypt's plaintext limit, AWS KMS's, which the
// server enforces too; checking it here lets the error say what to do.
const maxEncryptPlaintext = 4096

const encryptTooLarge = "encrypt takes at most 4096 bytes of plaintext (the AWS KMS Encrypt limit). " +
	"For larger data use envelope encryption: `meridian key generate-data-key` returns a data key to " +
	"encrypt the data with locally, and that key encrypted under --key to store beside it (decrypt turns it back into the data key)"

func newKeyEncryptCmd(o *clientOptions) *cobra.Command {
	var (
		req   apiv1.EncryptRequest
		ctxKV []string
		raw   rawOut
		in    = blobInput{name: "plaintext", required: true, max: maxEncryptPlaintext, tooLarge: encryptTooLarge}
	)
	cmd := &cobra.Command{
		Use:   "encrypt",
		Short: "Encrypt up to 4096 bytes under a key",
		Long: `Encrypt up to 4096 bytes (AWS KMS's limit). The ciphertext names its key
and version, so decrypt needs no --key. The encryption context, if any, is
bound to the ciphertext and must be given again to decrypt it.

For larger data use envelope encryption: generate-data-key gives a data key
to encrypt the data with locally and its copy encrypted under the key.`,
		Example: `  meridian key encrypt --insecure --key alias/orders --plaintext "hello"
  meridian key encrypt --insecure --key alias/orders --plaintext-file secret.txt --context app=orders --raw-out secret.bin
  echo -n hello | meridian key encrypt --insecure --key alias/orders --plaintext-file -`,
	}
	addBlobFlags(cmd, &in, "plaintext")
	cmd.Flags().StringArrayVar(&ctxKV, "context", nil, contextHelp)
	addEnumFlag(cmd.Flags(), &req.EncryptionAlgorithm, "encryption-algorithm", "encryption algorithm", "algorithm (default SYMMETRIC_DEFAULT; RSA keys need one)")
	addRawOutFlag(cmd, &raw, "ciphertext")
	return keyLeaf(o, cmd, &req.KeyId, &raw, func(c *cobra.Command) (callFn, error) {
		var err error
		if req.EncryptionContext, err = parseContext("context", ctxKV); err != nil {
			return nil, err
		}
		if req.Plaintext, err = in.read(c, false); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.Encrypt(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			r.addBinary("CiphertextBlob", resp.GetCiphertextBlob(), true)
			r.add("KeyId", resp.GetKeyId())
			r.addUint("KeyVersion", resp.GetKeyVersion())
			r.add("EncryptionAlgorithm", enumText(resp.GetEncryptionAlgorithm()))
			return r, nil
		}, nil
	})
}

func newKeyDecryptCmd(o *clientOptions) *cobra.Command {
	var (
		req    apiv1.DecryptRequest
		ctxKV  []string
		raw    rawOut
		binary bool
		in     = blobInput{name: "ciphertext", encoded: true, required: true}
	)
	cmd := &cobra.Command{
		Use:   "decrypt",
		Short: "Decrypt a ciphertext",
		Long: `Decrypt a ciphertext made by encrypt, re-encrypt or generate-data-key.
Symmetric ciphertexts name their key, so --key is optional (if given it must
match); RSA ciphertexts need --key and --encryption-algorithm. The plaintext
prints as base64; --raw-out - writes the raw bytes to stdout.

A wrong encryption context, a modified or truncated ciphertext and a
ciphertext from another cluster all fail with the same
InvalidCiphertextException.`,
		Example: `  meridian key decrypt --insecure --ciphertext "$CT"
  meridian key decrypt --insecure --ciphertext-file secret.bin --binary --context app=orders --raw-out -`,
	}
	cmd.Flags().StringVar(&req.KeyId, "key", "", keyFlagHelp+" (optional for symmetric ciphertexts)")
	addBlobFlags(cmd, &in, "ciphertext")
	cmd.Flags().BoolVar(&binary, "binary", false, "--ciphertext-file holds raw bytes, not base64")
	cmd.Flags().StringArrayVar(&ctxKV, "context", nil, contextHelp)
	addEnumFlag(cmd.Flags(), &req.EncryptionAlgorithm, "encryption-algorithm", "encryption algorithm", "algorithm used to encrypt")
	addRawOutFlag(cmd, &raw, "plaintext")
	return leaf(o, cmd, &raw, func(c *cobra.Command) (callFn, error) {
		var err error
		if req.EncryptionContext, err = parseContext("context", ctxKV); err != nil {
			return nil, err
		}
		if req.CiphertextBlob, err = in.read(c, binary); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.Decrypt(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			r.addBinary("Plaintext", resp.GetPlaintext(), true)
			r.add("KeyId", resp.GetKeyId())
			r.addUint("KeyVersion", resp.GetKeyVersion())
			r.add("EncryptionAlgorithm", enumText(resp.GetEncryptionAlgorithm()))
			return r, nil
		}, nil
	})
}

func newKeyReEncryptCmd(o *clientOptions) *cobra.Command {
	var (
		req          apiv1.ReEncryptRequest
		srcKV, dstKV []string
		raw          rawOut
		binary       bool
		in           = blobInput{name: "ciphertext", encoded: true, required: true}
	)
	cmd := &cobra.Command{
		Use:   "re-encrypt",
		Short: "Re-encrypt a ciphertext under another key (or the newest version)",
		Long: `Decrypt a ciphertext and encrypt the result under --key inside the node,
without the plaintext leaving it. Re-encrypting under the same key moves the
ciphertext to the key's newest version. --context is the source context,
--destination-context the new one.`,
		Example: `  meridian key re-encrypt --insecure --ciphertext "$CT" --key alias/orders-2025
  meridian key re-encrypt --insecure --ciphertext-file ct.b64 --key alias/orders --context app=orders --destination-context app=orders`,
	}
	cmd.Flags().StringVar(&req.DestinationKeyId, "key", "", "the destination key: id, alias (alias/NAME) or full name")
	cmd.Flags().StringVar(&req.SourceKeyId, "source-key", "", "the source key (optional for symmetric ciphertexts)")
	addBlobFlags(cmd, &in, "ciphertext")
	cmd.Flags().BoolVar(&binary, "binary", false, "--ciphertext-file holds raw bytes, not base64")
	cmd.Flags().StringArrayVar(&srcKV, "context", nil, "source "+contextHelp)
	cmd.Flags().StringArrayVar(&dstKV, "destination-context", nil, "destination encryption context entry `KEY=VALUE` (repeatable)")
	addEnumFlag(cmd.Flags(), &req.SourceEncryptionAlgorithm, "source-encryption-algorithm", "encryption algorithm", "source algorithm")
	addEnumFlag(cmd.Flags(), &req.DestinationEncryptionAlgorithm, "destination-encryption-algorithm", "encryption algorithm", "destination algorithm")
	addRawOutFlag(cmd, &raw, "new ciphertext")
	return leaf(o, cmd, &raw, func(c *cobra.Command) (callFn, error) {
		var err error
		if err = requireFlag("key", req.DestinationKeyId); err != nil {
			return nil, err
		}
		if req.SourceEncryptionContext, err = parseContext("context", srcKV); err != nil {
			return nil, err
		}
		if req.DestinationEncryptionContext, err = parseContext("destination-context", dstKV); err != nil {
			return nil, err
		}
		if req.CiphertextBlob, err = in.read(c, binary); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.ReEncrypt(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			r.addBinary("CiphertextBlob", resp.GetCiphertextBlob(), true)
			r.add("SourceKeyId", resp.GetSourceKeyId())
			r.addUint("SourceKeyVersion", resp.GetSourceKeyVersion())
			r.add("KeyId", resp.GetKeyId())
			r.addUint("KeyVersion", resp.GetKeyVersion())
			return r, nil
		}, nil
	})
}

func newKeyRandomCmd(o *clientOptions) *cobra.Command {
	var (
		req apiv1.GenerateRandomRequest
		raw rawOut
	)
	cmd := &cobra.Command{
		Use:   "random",
		Short: "Generate random bytes",
		Long:  `Generate 1-1024 random bytes from the serving node's HSM.`,
		Example: `  meridian key random --insecure --bytes 32
  meridian key random --insecure --bytes 64 --raw-out seed.bin`,
	}
	cmd.Flags().Uint32Var(&req.NumberOfBytes, "bytes", 32, "how many bytes, 1-1024")
	addRawOutFlag(cmd, &raw, "random bytes")
	return leaf(o, cmd, &raw, func(*cobra.Command) (callFn, error) {
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.GenerateRandom(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			r.addBinary("Plaintext", resp.GetPlaintext(), true)
			return r, nil
		}, nil
	})
}
