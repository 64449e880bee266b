// Code below is one thin method per RPC of meridian.v1.KeyManagement; the
// behaviour shared by all of them lives in call.go.

package client

import (
	"context"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// CreateKey creates a key. A retry of the same request (same request id) returns the first key instead of making a second one.
func (c *Client) CreateKey(ctx context.Context, req *apiv1.CreateKeyRequest) (*apiv1.CreateKeyResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.CreateKey, req)
}

// DescribeKey returns a key's metadata.
func (c *Client) DescribeKey(ctx context.Context, req *apiv1.DescribeKeyRequest) (*apiv1.DescribeKeyResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.DescribeKey, req)
}

// ListKeys lists keys, one page at a time; req may be nil.
func (c *Client) ListKeys(ctx context.Context, req *apiv1.ListKeysRequest) (*apiv1.ListKeysResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.ListKeys, req)
}

// UpdateKeyDescription replaces a key's description.
func (c *Client) UpdateKeyDescription(ctx context.Context, req *apiv1.UpdateKeyDescriptionRequest) (*apiv1.WriteResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.UpdateKeyDescription, req)
}

// TagResource adds or overwrites tags on a key.
func (c *Client) TagResource(ctx context.Context, req *apiv1.TagResourceRequest) (*apiv1.WriteResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.TagResource, req)
}

// UntagResource removes tags from a key.
func (c *Client) UntagResource(ctx context.Context, req *apiv1.UntagResourceRequest) (*apiv1.WriteResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.UntagResource, req)
}

// ListResourceTags lists a key's tags.
func (c *Client) ListResourceTags(ctx context.Context, req *apiv1.ListResourceTagsRequest) (*apiv1.ListResourceTagsResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.ListResourceTags, req)
}

// CreateAlias creates an alias ("alias/<name>") for a key.
func (c *Client) CreateAlias(ctx context.Context, req *apiv1.CreateAliasRequest) (*apiv1.WriteResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.CreateAlias, req)
}

// UpdateAlias points an existing alias at another key.
func (c *Client) UpdateAlias(ctx context.Context, req *apiv1.UpdateAliasRequest) (*apiv1.WriteResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.UpdateAlias, req)
}

// DeleteAlias deletes an alias.
func (c *Client) DeleteAlias(ctx context.Context, req *apiv1.DeleteAliasRequest) (*apiv1.WriteResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.DeleteAlias, req)
}

// ListAliases lists aliases, optionally only one key's; req may be nil.
func (c *Client) ListAliases(ctx context.Context, req *apiv1.ListAliasesRequest) (*apiv1.ListAliasesResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.ListAliases, req)
}

// EnableKey enables a disabled key.
func (c *Client) EnableKey(ctx context.Context, req *apiv1.EnableKeyRequest) (*apiv1.WriteResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.EnableKey, req)
}

// DisableKey disables a key so that it refuses cryptographic operations.
func (c *Client) DisableKey(ctx context.Context, req *apiv1.DisableKeyRequest) (*apiv1.WriteResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.DisableKey, req)
}

// ScheduleKeyDeletion schedules a key's deletion after a 7-30 day window.
func (c *Client) ScheduleKeyDeletion(ctx context.Context, req *apiv1.ScheduleKeyDeletionRequest) (*apiv1.ScheduleKeyDeletionResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.ScheduleKeyDeletion, req)
}

// CancelKeyDeletion cancels a scheduled deletion; the key returns Disabled.
func (c *Client) CancelKeyDeletion(ctx context.Context, req *apiv1.CancelKeyDeletionRequest) (*apiv1.CancelKeyDeletionResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.CancelKeyDeletion, req)
}

// EnableKeyRotation turns on automatic rotation.
func (c *Client) EnableKeyRotation(ctx context.Context, req *apiv1.EnableKeyRotationRequest) (*apiv1.WriteResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.EnableKeyRotation, req)
}

// DisableKeyRotation turns off automatic rotation.
func (c *Client) DisableKeyRotation(ctx context.Context, req *apiv1.DisableKeyRotationRequest) (*apiv1.WriteResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.DisableKeyRotation, req)
}

// GetKeyRotationStatus reports a key's rotation settings.
func (c *Client) GetKeyRotationStatus(ctx context.Context, req *apiv1.GetKeyRotationStatusRequest) (*apiv1.GetKeyRotationStatusResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.GetKeyRotationStatus, req)
}

// RotateKeyOnDemand adds a new key version now.
func (c *Client) RotateKeyOnDemand(ctx context.Context, req *apiv1.RotateKeyOnDemandRequest) (*apiv1.RotateKeyOnDemandResponse, error) {
	return write(ctx, c, apiv1.KeyManagementClient.RotateKeyOnDemand, req)
}

// ListKeyRotations lists a key's rotations.
func (c *Client) ListKeyRotations(ctx context.Context, req *apiv1.ListKeyRotationsRequest) (*apiv1.ListKeyRotationsResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.ListKeyRotations, req)
}

// Encrypt encrypts up to 4096 bytes under a symmetric or RSA key.
func (c *Client) Encrypt(ctx context.Context, req *apiv1.EncryptRequest) (*apiv1.EncryptResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.Encrypt, req)
}

// Decrypt decrypts a ciphertext; symmetric ciphertexts name their key.
func (c *Client) Decrypt(ctx context.Context, req *apiv1.DecryptRequest) (*apiv1.DecryptResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.Decrypt, req)
}

// ReEncrypt decrypts and encrypts again under another key without exposing the plaintext.
func (c *Client) ReEncrypt(ctx context.Context, req *apiv1.ReEncryptRequest) (*apiv1.ReEncryptResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.ReEncrypt, req)
}

// GenerateDataKey returns a data key in plaintext and encrypted under a key.
func (c *Client) GenerateDataKey(ctx context.Context, req *apiv1.GenerateDataKeyRequest) (*apiv1.GenerateDataKeyResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.GenerateDataKey, req)
}

// GenerateDataKeyWithoutPlaintext returns a data key encrypted under a key only.
func (c *Client) GenerateDataKeyWithoutPlaintext(ctx context.Context, req *apiv1.GenerateDataKeyRequest) (*apiv1.GenerateDataKeyResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.GenerateDataKeyWithoutPlaintext, req)
}

// GenerateDataKeyPair returns an asymmetric data key pair, the private key also encrypted under a key.
func (c *Client) GenerateDataKeyPair(ctx context.Context, req *apiv1.GenerateDataKeyPairRequest) (*apiv1.GenerateDataKeyPairResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.GenerateDataKeyPair, req)
}

// GenerateDataKeyPairWithoutPlaintext returns an asymmetric data key pair whose private key is only encrypted.
func (c *Client) GenerateDataKeyPairWithoutPlaintext(ctx context.Context, req *apiv1.GenerateDataKeyPairRequest) (*apiv1.GenerateDataKeyPairResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.GenerateDataKeyPairWithoutPlaintext, req)
}

// Sign signs a message or digest with an asymmetric key.
func (c *Client) Sign(ctx context.Context, req *apiv1.SignRequest) (*apiv1.SignResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.Sign, req)
}

// Verify verifies a signature with an asymmetric key.
func (c *Client) Verify(ctx context.Context, req *apiv1.VerifyRequest) (*apiv1.VerifyResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.Verify, req)
}

// GetPublicKey returns an asymmetric key's public key (PKIX DER).
func (c *Client) GetPublicKey(ctx context.Context, req *apiv1.GetPublicKeyRequest) (*apiv1.GetPublicKeyResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.GetPublicKey, req)
}

// GenerateMac computes an HMAC with an HMAC key.
func (c *Client) GenerateMac(ctx context.Context, req *apiv1.GenerateMacRequest) (*apiv1.GenerateMacResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.GenerateMac, req)
}

// VerifyMac verifies an HMAC with an HMAC key.
func (c *Client) VerifyMac(ctx context.Context, req *apiv1.VerifyMacRequest) (*apiv1.VerifyMacResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.VerifyMac, req)
}

// GenerateRandom returns random bytes from the serving node's HSM.
func (c *Client) GenerateRandom(ctx context.Context, req *apiv1.GenerateRandomRequest) (*apiv1.GenerateRandomResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.GenerateRandom, req)
}

// Members lists the cluster's nodes (region, zone, role, health, leader) as
// the serving node sees them; the client itself uses it for discovery.
func (c *Client) Members(ctx context.Context, req *apiv1.MembersRequest) (*apiv1.MembersResponse, error) {
	return read(ctx, c, apiv1.KeyManagementClient.Members, req)
}
