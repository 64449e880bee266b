package keystore

import "errors"

// Sentinel errors, one per exception a caller can act on. Operations wrap
// them with context ("decrypt: %w"); transport maps them to gRPC codes and
// the AWS-style exception name in one place. User errors (bad input, wrong
// state) are kept apart from internal ones (HSM, Raft): an internal error's
// detail is logged, never returned.
var (
	ErrValidation        = errors.New("ValidationException")
	ErrNotFound          = errors.New("NotFoundException")
	ErrAlreadyExists     = errors.New("AlreadyExistsException")
	ErrDisabled          = errors.New("DisabledException")
	ErrInvalidState      = errors.New("KMSInvalidStateException")
	ErrInvalidCiphertext = errors.New("InvalidCiphertextException")
	ErrIncorrectKey      = errors.New("IncorrectKeyException")
	ErrInvalidKeyUsage   = errors.New("InvalidKeyUsageException")
	ErrInvalidSignature  = errors.New("KMSInvalidSignatureException")
	ErrInvalidMac        = errors.New("KMSInvalidMacException")
	ErrUnsupported       = errors.New("UnsupportedOperationException")
	ErrLimitExceeded     = errors.New("LimitExceededException")
	// ErrUnavailable: this node cannot serve the call now (no leader, no
	// quorum, HSM down, not yet caught up); another node may.
	ErrUnavailable = errors.New("KMSUnavailableException")
	// ErrInternal: a bug or an unexpected HSM/storage failure.
	ErrInternal = errors.New("KMSInternalException")
)
