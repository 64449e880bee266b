package main

import (
	"context"

	"github.com/spf13/cobra"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
)

// Verification failures exit 1 so scripts can test `meridian key verify ...`.
var (
	errSignatureInvalid = &codedError{code: string(client.InvalidSignature), msg: "the signature is not valid"}
	errMacInvalid       = &codedError{code: string(client.InvalidMac), msg: "the MAC is not valid"}
)

func newKeySignCmd(o *clientOptions) *cobra.Command {
	var (
		req apiv1.SignRequest
		raw rawOut
		msg = blobInput{name: "message", required: true}
	)
	cmd := &cobra.Command{
		Use:   "sign",
		Short: "Sign a message or digest with an asymmetric key",
		Long: `Sign a message (RAW, up to 4096 bytes, hashed by the node) or a digest
you computed (DIGEST, exactly the hash's length) with an RSA or ECC
SIGN_VERIFY key. --raw-out writes the signature.`,
		Example: `  meridian key sign --insecure --key alias/signer --message "release 1.2" --signing-algorithm ECDSA_SHA_256
  meridian key sign --insecure --key alias/signer --message-file digest.bin --message-type DIGEST --signing-algorithm RSASSA_PSS_SHA_256 --raw-out sig.bin`,
	}
	addBlobFlags(cmd, &msg, "message")
	addEnumFlag(cmd.Flags(), &req.MessageType, "message-type", "message type", "what --message holds (default RAW)")
	addEnumFlag(cmd.Flags(), &req.SigningAlgorithm, "signing-algorithm", "signing algorithm", "signing algorithm (required)")
	addRawOutFlag(cmd, &raw, "signature")
	return keyLeaf(o, cmd, &req.KeyId, &raw, func(c *cobra.Command) (callFn, error) {
		var err error
		if req.SigningAlgorithm == 0 {
			return nil, usageErrorf("--signing-algorithm is required")
		}
		if req.Message, err = msg.read(c, false); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.Sign(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			r.addBinary("Signature", resp.GetSignature(), true)
			r.add("KeyId", resp.GetKeyId())
			r.addUint("KeyVersion", resp.GetKeyVersion())
			r.add("SigningAlgorithm", enumText(resp.GetSigningAlgorithm()))
			return r, nil
		}, nil
	})
}

func newKeyVerifyCmd(o *clientOptions) *cobra.Command {
	var (
		req    apiv1.VerifyRequest
		binary bool
		msg    = blobInput{name: "message", required: true}
		sig    = blobInput{name: "signature", encoded: true, required: true}
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify a signature",
		Long: `Verify a signature made by sign. Exits 0 when it is valid and 1 (with
KMSInvalidSignatureException) when it is not.`,
		Example: `  meridian key verify --insecure --key alias/signer --message "release 1.2" --signature "$SIG" --signing-algorithm ECDSA_SHA_256
  meridian key verify --insecure --key alias/signer --message-file release.tar --signature-file sig.bin --binary --signing-algorithm RSASSA_PSS_SHA_256`,
	}
	addBlobFlags(cmd, &msg, "message")
	addBlobFlags(cmd, &sig, "signature")
	cmd.Flags().BoolVar(&binary, "binary", false, "--signature-file holds raw bytes, not base64")
	addEnumFlag(cmd.Flags(), &req.MessageType, "message-type", "message type", "what --message holds (default RAW)")
	addEnumFlag(cmd.Flags(), &req.SigningAlgorithm, "signing-algorithm", "signing algorithm", "signing algorithm (required)")
	return keyLeaf(o, cmd, &req.KeyId, nil, func(c *cobra.Command) (callFn, error) {
		var err error
		if req.SigningAlgorithm == 0 {
			return nil, usageErrorf("--signing-algorithm is required")
		}
		if err = oneStdin(&msg, &sig); err != nil {
			return nil, err
		}
		if req.Message, err = msg.read(c, false); err != nil {
			return nil, err
		}
		if req.Signature, err = sig.read(c, binary); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.Verify(ctx, &req)
			if err != nil {
				return nil, err
			}
			if !resp.GetSignatureValid() {
				return nil, errSignatureInvalid
			}
			r := &result{msg: resp}
			r.addBool("SignatureValid", true)
			r.add("KeyId", resp.GetKeyId())
			r.add("SigningAlgorithm", enumText(resp.GetSigningAlgorithm()))
			return r, nil
		}, nil
	})
}

func newKeyGetPublicKeyCmd(o *clientOptions) *cobra.Command {
	var (
		req apiv1.GetPublicKeyRequest
		raw rawOut
	)
	cmd := &cobra.Command{
		Use:   "get-public-key",
		Short: "Get an asymmetric key's public key",
		Long: `Get the public key (PKIX DER) of an RSA or ECC key, to verify or encrypt
outside Meridian. --raw-out writes the DER bytes.`,
		Example: `  meridian key get-public-key --insecure --key alias/signer
  meridian key get-public-key --insecure --key alias/signer --raw-out pub.der && openssl pkey -pubin -inform DER -in pub.der`,
	}
	addRawOutFlag(cmd, &raw, "public key (DER)")
	return keyLeaf(o, cmd, &req.KeyId, &raw, func(*cobra.Command) (callFn, error) {
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.GetPublicKey(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			r.addBinary("PublicKey", resp.GetPublicKey(), true)
			r.add("KeyId", resp.GetKeyId())
			r.addUint("KeyVersion", resp.GetKeyVersion())
			r.add("KeySpec", enumText(resp.GetKeySpec()))
			r.add("KeyUsage", enumText(resp.GetKeyUsage()))
			r.add("EncryptionAlgorithms", enumList(resp.GetEncryptionAlgorithms()))
			r.add("SigningAlgorithms", enumList(resp.GetSigningAlgorithms()))
			return r, nil
		}, nil
	})
}

func newKeyGenerateMacCmd(o *clientOptions) *cobra.Command {
	var (
		req apiv1.GenerateMacRequest
		raw rawOut
		msg = blobInput{name: "message", required: true}
	)
	cmd := &cobra.Command{
		Use:   "generate-mac",
		Short: "Compute an HMAC with an HMAC key",
		Long:  `Compute the HMAC of a message (1-4096 bytes) with an HMAC key. --raw-out writes the MAC.`,
		Example: `  meridian key generate-mac --insecure --key alias/mac --message "hello" --mac-algorithm HMAC_SHA_256
  meridian key generate-mac --insecure --key alias/mac --message-file msg.bin --mac-algorithm HMAC_SHA_256 --raw-out mac.bin`,
	}
	addBlobFlags(cmd, &msg, "message")
	addEnumFlag(cmd.Flags(), &req.MacAlgorithm, "mac-algorithm", "MAC algorithm", "MAC algorithm (required)")
	addRawOutFlag(cmd, &raw, "MAC")
	return keyLeaf(o, cmd, &req.KeyId, &raw, func(c *cobra.Command) (callFn, error) {
		var err error
		if req.MacAlgorithm == 0 {
			return nil, usageErrorf("--mac-algorithm is required")
		}
		if req.Message, err = msg.read(c, false); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.GenerateMac(ctx, &req)
			if err != nil {
				return nil, err
			}
			r := &result{msg: resp}
			r.addBinary("Mac", resp.GetMac(), true)
			r.add("KeyId", resp.GetKeyId())
			r.addUint("KeyVersion", resp.GetKeyVersion())
			r.add("MacAlgorithm", enumText(resp.GetMacAlgorithm()))
			return r, nil
		}, nil
	})
}

func newKeyVerifyMacCmd(o *clientOptions) *cobra.Command {
	var (
		req    apiv1.VerifyMacRequest
		binary bool
		msg    = blobInput{name: "message", required: true}
		mac    = blobInput{name: "mac", encoded: true, required: true}
	)
	cmd := &cobra.Command{
		Use:   "verify-mac",
		Short: "Verify an HMAC",
		Long: `Verify a MAC made by generate-mac. Exits 0 when it is valid and 1 (with
KMSInvalidMacException) when it is not.`,
		Example: `  meridian key verify-mac --insecure --key alias/mac --message "hello" --mac "$MAC" --mac-algorithm HMAC_SHA_256`,
	}
	addBlobFlags(cmd, &msg, "message")
	addBlobFlags(cmd, &mac, "mac")
	cmd.Flags().BoolVar(&binary, "binary", false, "--mac-file holds raw bytes, not base64")
	addEnumFlag(cmd.Flags(), &req.MacAlgorithm, "mac-algorithm", "MAC algorithm", "MAC algorithm (required)")
	return keyLeaf(o, cmd, &req.KeyId, nil, func(c *cobra.Command) (callFn, error) {
		var err error
		if req.MacAlgorithm == 0 {
			return nil, usageErrorf("--mac-algorithm is required")
		}
		if err = oneStdin(&msg, &mac); err != nil {
			return nil, err
		}
		if req.Message, err = msg.read(c, false); err != nil {
			return nil, err
		}
		if req.Mac, err = mac.read(c, binary); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client) (*result, error) {
			resp, err := c.VerifyMac(ctx, &req)
			if err != nil {
				return nil, err
			}
			if !resp.GetMacValid() {
				return nil, errMacInvalid
			}
			r := &result{msg: resp}
			r.addBool("MacValid", true)
			r.add("KeyId", resp.GetKeyId())
			r.add("MacAlgorithm", enumText(resp.GetMacAlgorithm()))
			return r, nil
		}, nil
	})
}
