package transport

import (
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/keystore"
)

// Request decoders: api request -> keystore input. They check only what the
// wire format can get wrong (enum numbers this server does not know); every
// rule about values (lengths, ranges, key ids) is the keystore's, so it is
// written once. They must never panic: they see whatever a client sends.

// intArg widens a uint32 count for the keystore. On 32-bit platforms a huge
// value would wrap negative; clamping keeps it a large positive number that
// the keystore's range check refuses with a clear message.
func intArg(u uint32) int {
	return int(min(uint64(u), math.MaxInt32))
}

func tagsIn(ts []*apiv1.Tag) []keystore.Tag {
	if len(ts) == 0 {
		return nil
	}
	out := make([]keystore.Tag, len(ts))
	for i, t := range ts {
		out[i] = keystore.Tag{Key: t.GetTagKey(), Value: t.GetTagValue()}
	}
	return out
}

func createKeyIn(r *apiv1.CreateKeyRequest) (keystore.CreateKeyInput, error) {
	var c conv
	in := keystore.CreateKeyInput{
		Description:     r.GetDescription(),
		KeySpec:         keySpecs.in(&c, r.GetKeySpec()),
		KeyUsage:        keyUsages.in(&c, r.GetKeyUsage()),
		Origin:          origins.in(&c, r.GetOrigin()),
		ProtectionLevel: protectionLevels.in(&c, r.GetProtectionLevel()),
		Tags:            tagsIn(r.GetTags()),
		MaxStaleness:    durationIn(&c, "max_staleness", r.GetMaxStaleness()),
	}
	return in, c.err
}

// durationIn converts a request's Duration; unset is 0. A malformed
// Duration (nanos out of range or of the other sign), a negative one, or
// one beyond time.Duration's ~292 years is refused: AsDuration would
// silently clamp it.
func durationIn(c *conv, field string, d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	if err := d.CheckValid(); err != nil {
		c.fail(fmt.Errorf("%s: %v: %w", field, err, keystore.ErrValidation))
		return 0
	}
	if d.GetSeconds() < 0 || d.GetNanos() < 0 {
		c.fail(fmt.Errorf("%s %s is negative: %w", field, d.AsDuration(), keystore.ErrValidation))
		return 0
	}
	if d.GetSeconds() >= int64(math.MaxInt64/time.Second) {
		c.fail(fmt.Errorf("%s of %d seconds is too long: %w", field, d.GetSeconds(), keystore.ErrValidation))
		return 0
	}
	return d.AsDuration()
}

func encryptIn(r *apiv1.EncryptRequest) (keystore.EncryptInput, error) {
	var c conv
	in := keystore.EncryptInput{
		KeyID:               r.GetKeyId(),
		Plaintext:           r.GetPlaintext(),
		EncryptionContext:   r.GetEncryptionContext(),
		EncryptionAlgorithm: encryptionAlgorithms.in(&c, r.GetEncryptionAlgorithm()),
	}
	return in, c.err
}

func decryptIn(r *apiv1.DecryptRequest) (keystore.DecryptInput, error) {
	var c conv
	in := keystore.DecryptInput{
		CiphertextBlob:      r.GetCiphertextBlob(),
		EncryptionContext:   r.GetEncryptionContext(),
		KeyID:               r.GetKeyId(),
		EncryptionAlgorithm: encryptionAlgorithms.in(&c, r.GetEncryptionAlgorithm()),
	}
	return in, c.err
}

func reEncryptIn(r *apiv1.ReEncryptRequest) (keystore.ReEncryptInput, error) {
	var c conv
	in := keystore.ReEncryptInput{
		CiphertextBlob:                 r.GetCiphertextBlob(),
		SourceEncryptionContext:        r.GetSourceEncryptionContext(),
		SourceKeyID:                    r.GetSourceKeyId(),
		SourceEncryptionAlgorithm:      encryptionAlgorithms.in(&c, r.GetSourceEncryptionAlgorithm()),
		DestinationKeyID:               r.GetDestinationKeyId(),
		DestinationEncryptionContext:   r.GetDestinationEncryptionContext(),
		DestinationEncryptionAlgorithm: encryptionAlgorithms.in(&c, r.GetDestinationEncryptionAlgorithm()),
	}
	return in, c.err
}

func generateDataKeyIn(r *apiv1.GenerateDataKeyRequest, withoutPlaintext bool) (keystore.GenerateDataKeyInput, error) {
	var c conv
	in := keystore.GenerateDataKeyInput{
		KeyID:             r.GetKeyId(),
		KeySpec:           dataKeySpecs.in(&c, r.GetKeySpec()),
		NumberOfBytes:     intArg(r.GetNumberOfBytes()),
		EncryptionContext: r.GetEncryptionContext(),
		WithoutPlaintext:  withoutPlaintext,
	}
	return in, c.err
}

func generateDataKeyPairIn(r *apiv1.GenerateDataKeyPairRequest, withoutPlaintext bool) (keystore.GenerateDataKeyPairInput, error) {
	var c conv
	in := keystore.GenerateDataKeyPairInput{
		KeyID:             r.GetKeyId(),
		KeyPairSpec:       dataKeyPairSpecs.in(&c, r.GetKeyPairSpec()),
		EncryptionContext: r.GetEncryptionContext(),
		WithoutPlaintext:  withoutPlaintext,
	}
	return in, c.err
}

func signIn(r *apiv1.SignRequest) (keystore.SignInput, error) {
	var c conv
	in := keystore.SignInput{
		KeyID:            r.GetKeyId(),
		Message:          r.GetMessage(),
		MessageType:      messageTypes.in(&c, r.GetMessageType()),
		SigningAlgorithm: signingAlgorithms.in(&c, r.GetSigningAlgorithm()),
	}
	return in, c.err
}

func verifyIn(r *apiv1.VerifyRequest) (keystore.VerifyInput, error) {
	var c conv
	in := keystore.VerifyInput{
		KeyID:            r.GetKeyId(),
		Message:          r.GetMessage(),
		MessageType:      messageTypes.in(&c, r.GetMessageType()),
		Signature:        r.GetSignature(),
		SigningAlgorithm: signingAlgorithms.in(&c, r.GetSigningAlgorithm()),
	}
	return in, c.err
}

func generateMacIn(r *apiv1.GenerateMacRequest) (keystore.MacInput, error) {
	var c conv
	in := keystore.MacInput{
		KeyID:        r.GetKeyId(),
		Message:      r.GetMessage(),
		MacAlgorithm: macAlgorithms.in(&c, r.GetMacAlgorithm()),
	}
	return in, c.err
}

func verifyMacIn(r *apiv1.VerifyMacRequest) (keystore.MacInput, error) {
	var c conv
	in := keystore.MacInput{
		KeyID:        r.GetKeyId(),
		Message:      r.GetMessage(),
		Mac:          r.GetMac(),
		MacAlgorithm: macAlgorithms.in(&c, r.GetMacAlgorithm()),
	}
	return in, c.err
}
