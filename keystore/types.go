package keystore

import "time"

// Enumerations use the AWS KMS spellings ("SYMMETRIC_DEFAULT", "ENABLED",
// ...) so that the CLI, logs and the api enums (prefix trimmed) all agree.
// The zero value means "not given" and takes the documented default.
type (
	KeySpec             string
	KeyUsage            string
	KeyState            string
	Origin              string
	ProtectionLevel     string
	EncryptionAlgorithm string
	SigningAlgorithm    string
	MacAlgorithm        string
	MessageType         string
	DataKeySpec         string
	DataKeyPairSpec     string
	RotationType        string
)

const (
	SpecSymmetricDefault KeySpec = "SYMMETRIC_DEFAULT"
	SpecHMAC256          KeySpec = "HMAC_256"
	SpecHMAC384          KeySpec = "HMAC_384"
	SpecHMAC512          KeySpec = "HMAC_512"
	SpecRSA2048          KeySpec = "RSA_2048"
	SpecRSA3072          KeySpec = "RSA_3072"
	SpecRSA4096          KeySpec = "RSA_4096"
	SpecECCP256          KeySpec = "ECC_NIST_P256"
	SpecECCP384          KeySpec = "ECC_NIST_P384"
	SpecECCP521          KeySpec = "ECC_NIST_P521"

	UsageEncryptDecrypt    KeyUsage = "ENCRYPT_DECRYPT"
	UsageSignVerify        KeyUsage = "SIGN_VERIFY"
	UsageGenerateVerifyMAC KeyUsage = "GENERATE_VERIFY_MAC"

	StateEnabled         KeyState = "ENABLED"
	StateDisabled        KeyState = "DISABLED"
	StatePendingDeletion KeyState = "PENDING_DELETION"

	OriginMeridian Origin = "MERIDIAN"

	ProtectionSoftware ProtectionLevel = "SOFTWARE"
	ProtectionHSM      ProtectionLevel = "HSM"

	EncSymmetricDefault EncryptionAlgorithm = "SYMMETRIC_DEFAULT"
	EncRSAOAEPSHA1      EncryptionAlgorithm = "RSAES_OAEP_SHA_1"
	EncRSAOAEPSHA256    EncryptionAlgorithm = "RSAES_OAEP_SHA_256"

	SignRSAPSSSHA256   SigningAlgorithm = "RSASSA_PSS_SHA_256"
	SignRSAPSSSHA384   SigningAlgorithm = "RSASSA_PSS_SHA_384"
	SignRSAPSSSHA512   SigningAlgorithm = "RSASSA_PSS_SHA_512"
	SignRSAPKCS1SHA256 SigningAlgorithm = "RSASSA_PKCS1_V1_5_SHA_256"
	SignRSAPKCS1SHA384 SigningAlgorithm = "RSASSA_PKCS1_V1_5_SHA_384"
	SignRSAPKCS1SHA512 SigningAlgorithm = "RSASSA_PKCS1_V1_5_SHA_512"
	SignECDSASHA256    SigningAlgorithm = "ECDSA_SHA_256"
	SignECDSASHA384    SigningAlgorithm = "ECDSA_SHA_384"
	SignECDSASHA512    SigningAlgorithm = "ECDSA_SHA_512"

	MacHMACSHA256 MacAlgorithm = "HMAC_SHA_256"
	MacHMACSHA384 MacAlgorithm = "HMAC_SHA_384"
	MacHMACSHA512 MacAlgorithm = "HMAC_SHA_512"

	MessageRaw    MessageType = "RAW"
	MessageDigest MessageType = "DIGEST"

	DataKeyAES128 DataKeySpec = "AES_128"
	DataKeyAES256 DataKeySpec = "AES_256"

	PairRSA2048 DataKeyPairSpec = "RSA_2048"
	PairRSA3072 DataKeyPairSpec = "RSA_3072"
	PairRSA4096 DataKeyPairSpec = "RSA_4096"
	PairECCP256 DataKeyPairSpec = "ECC_NIST_P256"
	PairECCP384 DataKeyPairSpec = "ECC_NIST_P384"
	PairECCP521 DataKeyPairSpec = "ECC_NIST_P521"

	RotationAutomatic RotationType = "AUTOMATIC"
	RotationOnDemand  RotationType = "ON_DEMAND"
)

// KeyMetadata is what DescribeKey and CreateKey return.
type KeyMetadata struct {
	KeyID                string
	KeyName              string // "meridian:key/<KeyID>"
	Description          string
	KeySpec              KeySpec
	KeyUsage             KeyUsage
	KeyState             KeyState
	Enabled              bool
	Origin               Origin
	ProtectionLevel      ProtectionLevel
	CreationDate         time.Time
	DeletionDate         time.Time // zero unless PENDING_DELETION
	PendingWindowDays    uint32
	RotationEnabled      bool
	RotationPeriodDays   uint32
	NextRotationDate     time.Time
	CurrentVersion       uint32
	EncryptionAlgorithms []EncryptionAlgorithm
	SigningAlgorithms    []SigningAlgorithm
	MacAlgorithms        []MacAlgorithm
	// MaxStaleness bounds how long ago a node may have last heard from the
	// Raft leader and still serve this key; 0 means no bound.
	MaxStaleness time.Duration
}

// WriteResult is returned by every control-plane write.
type WriteResult struct {
	// CommitIndex is the Raft index of the write: the consistency token.
	CommitIndex uint64
	// KeyID is the key the write acted on, resolved from whatever alias or
	// name the caller gave ("" when no key is involved).
	KeyID string
}

// Page is one page of a listing; NextMarker continues it when Truncated.
type Page[T any] struct {
	Items      []T
	NextMarker string
	Truncated  bool
}

type KeyListEntry struct {
	KeyID   string
	KeyName string
}

type Tag struct {
	Key, Value string
}

type AliasEntry struct {
	AliasName     string // "alias/<name>"
	AliasFullName string // "meridian:alias/<name>"
	TargetKeyID   string
	CreationDate  time.Time
	UpdatedDate   time.Time
}

type KeyRotation struct {
	KeyID        string
	KeyVersion   uint32
	RotationDate time.Time
	RotationType RotationType
}

type RotationStatus struct {
	KeyID              string
	RotationEnabled    bool
	RotationPeriodDays uint32
	NextRotationDate   time.Time
	OnDemandStartDate  time.Time // latest on-demand rotation, zero if none
}

type CreateKeyInput struct {
	Description     string
	KeySpec         KeySpec         // default SYMMETRIC_DEFAULT
	KeyUsage        KeyUsage        // default: the spec's natural usage
	Origin          Origin          // default MERIDIAN
	ProtectionLevel ProtectionLevel // default SOFTWARE
	Tags            []Tag
	// MaxStaleness: see KeyMetadata.MaxStaleness. 0 means no bound.
	MaxStaleness time.Duration
}

type ScheduleDeletionResult struct {
	KeyID             string
	DeletionDate      time.Time
	KeyState          KeyState
	PendingWindowDays uint32
	WriteResult
}

type EncryptInput struct {
	KeyID               string
	Plaintext           []byte
	EncryptionContext   map[string]string
	EncryptionAlgorithm EncryptionAlgorithm
}

type EncryptOutput struct {
	CiphertextBlob      []byte
	KeyID               string
	KeyVersion          uint32
	EncryptionAlgorithm EncryptionAlgorithm
}

type DecryptInput struct {
	CiphertextBlob      []byte
	EncryptionContext   map[string]string
	KeyID               string // required for asymmetric; optional check for symmetric
	EncryptionAlgorithm EncryptionAlgorithm
}

type DecryptOutput struct {
	Plaintext           []byte
	KeyID               string
	KeyVersion          uint32
	EncryptionAlgorithm EncryptionAlgorithm
}

type ReEncryptInput struct {
	CiphertextBlob                 []byte
	SourceEncryptionContext        map[string]string
	SourceKeyID                    string
	SourceEncryptionAlgorithm      EncryptionAlgorithm
	DestinationKeyID               string
	DestinationEncryptionContext   map[string]string
	DestinationEncryptionAlgorithm EncryptionAlgorithm
}

type ReEncryptOutput struct {
	CiphertextBlob   []byte
	SourceKeyID      string
	SourceKeyVersion uint32
	KeyID            string
	KeyVersion       uint32
}

type GenerateDataKeyInput struct {
	KeyID             string
	KeySpec           DataKeySpec // or NumberOfBytes
	NumberOfBytes     int
	EncryptionContext map[string]string
	WithoutPlaintext  bool
}

type GenerateDataKeyOutput struct {
	CiphertextBlob []byte
	Plaintext      []byte // nil when WithoutPlaintext
	KeyID          string
	KeyVersion     uint32
}

type GenerateDataKeyPairInput struct {
	KeyID             string
	KeyPairSpec       DataKeyPairSpec
	EncryptionContext map[string]string
	WithoutPlaintext  bool
}

type GenerateDataKeyPairOutput struct {
	PrivateKeyCiphertextBlob []byte
	PrivateKeyPlaintext      []byte // PKCS#8 DER; nil when WithoutPlaintext
	PublicKey                []byte // PKIX DER
	KeyID                    string
	KeyVersion               uint32
	KeyPairSpec              DataKeyPairSpec
}

type SignInput struct {
	KeyID            string
	Message          []byte
	MessageType      MessageType // default RAW
	SigningAlgorithm SigningAlgorithm
}

type SignOutput struct {
	Signature        []byte
	KeyID            string
	KeyVersion       uint32
	SigningAlgorithm SigningAlgorithm
}

type VerifyInput struct {
	KeyID            string
	Message          []byte
	MessageType      MessageType
	Signature        []byte
	SigningAlgorithm SigningAlgorithm
}

type VerifyOutput struct {
	SignatureValid   bool
	KeyID            string
	SigningAlgorithm SigningAlgorithm
}

type PublicKeyOutput struct {
	KeyID                string
	PublicKey            []byte // PKIX DER
	KeySpec              KeySpec
	KeyUsage             KeyUsage
	KeyVersion           uint32
	EncryptionAlgorithms []EncryptionAlgorithm
	SigningAlgorithms    []SigningAlgorithm
}

type MacInput struct {
	KeyID        string
	Message      []byte
	MacAlgorithm MacAlgorithm
	Mac          []byte // VerifyMac only
}

type MacOutput struct {
	Mac          []byte // GenerateMac only
	MacValid     bool   // VerifyMac only
	KeyID        string
	KeyVersion   uint32
	MacAlgorithm MacAlgorithm
}
