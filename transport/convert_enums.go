package transport

import (
	"fmt"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/keystore"
)

// enumTable converts one api enum to and from its keystore spelling. The api
// value UNSPECIFIED and the keystore value "" both mean "not given" and map to
// each other; any other value without a row is refused rather than guessed.
type enumTable[A ~int32, K ~string] struct {
	field   string // proto field name, for error messages
	toStore map[A]K
	toAPI   map[K]A
}

type enumRow[A ~int32, K ~string] struct {
	api   A
	store K
}

func newEnumTable[A ~int32, K ~string](field string, rows ...enumRow[A, K]) enumTable[A, K] {
	t := enumTable[A, K]{
		field:   field,
		toStore: make(map[A]K, len(rows)),
		toAPI:   make(map[K]A, len(rows)),
	}
	for _, r := range rows {
		t.toStore[r.api] = r.store
		t.toAPI[r.store] = r.api
	}
	return t
}

// in converts a request's enum; an unknown number is the caller's mistake
// (an old server, or garbage) and becomes a ValidationException.
func (t enumTable[A, K]) in(c *conv, a A) K {
	if a == 0 {
		return ""
	}
	k, ok := t.toStore[a]
	if !ok {
		c.fail(fmt.Errorf("%s %d is not a known value: %w", t.field, int32(a), keystore.ErrValidation))
	}
	return k
}

// out converts a keystore value for a response; a value without a row is a
// bug in this server (keystore grew a value the api lacks), hence internal.
func (t enumTable[A, K]) out(c *conv, k K) A {
	if k == "" {
		return 0
	}
	a, ok := t.toAPI[k]
	if !ok {
		c.fail(fmt.Errorf("keystore returned %s %q, which the api lacks: %w", t.field, string(k), keystore.ErrInternal))
	}
	return a
}

// outList converts a list of keystore values for a response.
func (t enumTable[A, K]) outList(c *conv, ks []K) []A {
	if len(ks) == 0 {
		return nil
	}
	as := make([]A, len(ks))
	for i, k := range ks {
		as[i] = t.out(c, k)
	}
	return as
}

// conv collects the first error of a conversion so that building a message
// field by field stays readable.
type conv struct{ err error }

func (c *conv) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

type (
	keySpecRow      = enumRow[apiv1.KeySpec, keystore.KeySpec]
	keyUsageRow     = enumRow[apiv1.KeyUsage, keystore.KeyUsage]
	keyStateRow     = enumRow[apiv1.KeyState, keystore.KeyState]
	originRow       = enumRow[apiv1.Origin, keystore.Origin]
	protectionRow   = enumRow[apiv1.ProtectionLevel, keystore.ProtectionLevel]
	encAlgRow       = enumRow[apiv1.EncryptionAlgorithm, keystore.EncryptionAlgorithm]
	signAlgRow      = enumRow[apiv1.SigningAlgorithm, keystore.SigningAlgorithm]
	macAlgRow       = enumRow[apiv1.MacAlgorithm, keystore.MacAlgorithm]
	messageTypeRow  = enumRow[apiv1.MessageType, keystore.MessageType]
	dataKeySpecRow  = enumRow[apiv1.DataKeySpec, keystore.DataKeySpec]
	pairSpecRow     = enumRow[apiv1.DataKeyPairSpec, keystore.DataKeyPairSpec]
	rotationTypeRow = enumRow[apiv1.RotationType, keystore.RotationType]
)

var (
	keySpecs = newEnumTable("key_spec",
		keySpecRow{apiv1.KeySpec_KEY_SPEC_SYMMETRIC_DEFAULT, keystore.SpecSymmetricDefault},
		keySpecRow{apiv1.KeySpec_KEY_SPEC_HMAC_256, keystore.SpecHMAC256},
		keySpecRow{apiv1.KeySpec_KEY_SPEC_HMAC_384, keystore.SpecHMAC384},
		keySpecRow{apiv1.KeySpec_KEY_SPEC_HMAC_512, keystore.SpecHMAC512},
		keySpecRow{apiv1.KeySpec_KEY_SPEC_RSA_2048, keystore.SpecRSA2048},
		keySpecRow{apiv1.KeySpec_KEY_SPEC_RSA_3072, keystore.SpecRSA3072},
		keySpecRow{apiv1.KeySpec_KEY_SPEC_RSA_4096, keystore.SpecRSA4096},
		keySpecRow{apiv1.KeySpec_KEY_SPEC_ECC_NIST_P256, keystore.SpecECCP256},
		keySpecRow{apiv1.KeySpec_KEY_SPEC_ECC_NIST_P384, keystore.SpecECCP384},
		keySpecRow{apiv1.KeySpec_KEY_SPEC_ECC_NIST_P521, keystore.SpecECCP521},
	)
	keyUsages = newEnumTable("key_usage",
		keyUsageRow{apiv1.KeyUsage_KEY_USAGE_ENCRYPT_DECRYPT, keystore.UsageEncryptDecrypt},
		keyUsageRow{apiv1.KeyUsage_KEY_USAGE_SIGN_VERIFY, keystore.UsageSignVerify},
		keyUsageRow{apiv1.KeyUsage_KEY_USAGE_GENERATE_VERIFY_MAC, keystore.UsageGenerateVerifyMAC},
	)
	keyStates = newEnumTable("key_state",
		keyStateRow{apiv1.KeyState_KEY_STATE_ENABLED, keystore.StateEnabled},
		keyStateRow{apiv1.KeyState_KEY_STATE_DISABLED, keystore.StateDisabled},
		keyStateRow{apiv1.KeyState_KEY_STATE_PENDING_DELETION, keystore.StatePendingDeletion},
	)
	origins = newEnumTable("origin",
		originRow{apiv1.Origin_ORIGIN_MERIDIAN, keystore.OriginMeridian},
	)
	protectionLevels = newEnumTable("protection_level",
		protectionRow{apiv1.ProtectionLevel_PROTECTION_LEVEL_SOFTWARE, keystore.ProtectionSoftware},
		protectionRow{apiv1.ProtectionLevel_PROTECTION_LEVEL_HSM, keystore.ProtectionHSM},
	)
	encryptionAlgorithms = newEnumTable("encryption_algorithm",
		encAlgRow{apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_SYMMETRIC_DEFAULT, keystore.EncSymmetricDefault},
		encAlgRow{apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_1, keystore.EncRSAOAEPSHA1},
		encAlgRow{apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_256, keystore.EncRSAOAEPSHA256},
	)
	signingAlgorithms = newEnumTable("signing_algorithm",
		signAlgRow{apiv1.SigningAlgorithm_SIGNING_ALGORITHM_RSASSA_PSS_SHA_256, keystore.SignRSAPSSSHA256},
		signAlgRow{apiv1.SigningAlgorithm_SIGNING_ALGORITHM_RSASSA_PSS_SHA_384, keystore.SignRSAPSSSHA384},
		signAlgRow{apiv1.SigningAlgorithm_SIGNING_ALGORITHM_RSASSA_PSS_SHA_512, keystore.SignRSAPSSSHA512},
		signAlgRow{apiv1.SigningAlgorithm_SIGNING_ALGORITHM_RSASSA_PKCS1_V1_5_SHA_256, keystore.SignRSAPKCS1SHA256},
		signAlgRow{apiv1.SigningAlgorithm_SIGNING_ALGORITHM_RSASSA_PKCS1_V1_5_SHA_384, keystore.SignRSAPKCS1SHA384},
		signAlgRow{apiv1.SigningAlgorithm_SIGNING_ALGORITHM_RSASSA_PKCS1_V1_5_SHA_512, keystore.SignRSAPKCS1SHA512},
		signAlgRow{apiv1.SigningAlgorithm_SIGNING_ALGORITHM_ECDSA_SHA_256, keystore.SignECDSASHA256},
		signAlgRow{apiv1.SigningAlgorithm_SIGNING_ALGORITHM_ECDSA_SHA_384, keystore.SignECDSASHA384},
		signAlgRow{apiv1.SigningAlgorithm_SIGNING_ALGORITHM_ECDSA_SHA_512, keystore.SignECDSASHA512},
	)
	macAlgorithms = newEnumTable("mac_algorithm",
		macAlgRow{apiv1.MacAlgorithm_MAC_ALGORITHM_HMAC_SHA_256, keystore.MacHMACSHA256},
		macAlgRow{apiv1.MacAlgorithm_MAC_ALGORITHM_HMAC_SHA_384, keystore.MacHMACSHA384},
		macAlgRow{apiv1.MacAlgorithm_MAC_ALGORITHM_HMAC_SHA_512, keystore.MacHMACSHA512},
	)
	messageTypes = newEnumTable("message_type",
		messageTypeRow{apiv1.MessageType_MESSAGE_TYPE_RAW, keystore.MessageRaw},
		messageTypeRow{apiv1.MessageType_MESSAGE_TYPE_DIGEST, keystore.MessageDigest},
	)
	dataKeySpecs = newEnumTable("key_spec",
		dataKeySpecRow{apiv1.DataKeySpec_DATA_KEY_SPEC_AES_128, keystore.DataKeyAES128},
		dataKeySpecRow{apiv1.DataKeySpec_DATA_KEY_SPEC_AES_256, keystore.DataKeyAES256},
	)
	dataKeyPairSpecs = newEnumTable("key_pair_spec",
		pairSpecRow{apiv1.DataKeyPairSpec_DATA_KEY_PAIR_SPEC_RSA_2048, keystore.PairRSA2048},
		pairSpecRow{apiv1.DataKeyPairSpec_DATA_KEY_PAIR_SPEC_RSA_3072, keystore.PairRSA3072},
		pairSpecRow{apiv1.DataKeyPairSpec_DATA_KEY_PAIR_SPEC_RSA_4096, keystore.PairRSA4096},
		pairSpecRow{apiv1.DataKeyPairSpec_DATA_KEY_PAIR_SPEC_ECC_NIST_P256, keystore.PairECCP256},
		pairSpecRow{apiv1.DataKeyPairSpec_DATA_KEY_PAIR_SPEC_ECC_NIST_P384, keystore.PairECCP384},
		pairSpecRow{apiv1.DataKeyPairSpec_DATA_KEY_PAIR_SPEC_ECC_NIST_P521, keystore.PairECCP521},
	)
	rotationTypes = newEnumTable("rotation_type",
		rotationTypeRow{apiv1.RotationType_ROTATION_TYPE_AUTOMATIC, keystore.RotationAutomatic},
		rotationTypeRow{apiv1.RotationType_ROTATION_TYPE_ON_DEMAND, keystore.RotationOnDemand},
	)
)
