package pkcs11

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// DefaultDomainKeyLabelPrefix is the CKA_LABEL prefix of DK objects; the
// version follows in decimal ("meridian-dk-v1", "meridian-dk-v2", ...).
const DefaultDomainKeyLabelPrefix = "meridian-dk-v"

// DefaultMaxSessions caps the session pool when the token allows more.
const DefaultMaxSessions = 16

// maxLabel is CK_TOKEN_INFO's label field and a sane bound for CKA_LABEL.
const maxLabel = 32

// Config says which module and token to use. It holds the user PIN, so
// String and LogValue redact it: a Config may be logged, its PIN never.
type Config struct {
	// ModulePath is the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so.
	ModulePath string
	// TokenLabel selects the token. Slot ids are not stable (SoftHSM
	// renumbers them when tokens are added), labels are.
	TokenLabel string
	// PIN is the token's user PIN. The caller reads it from a file (see
	// ReadPINFile) or an environment variable, never from a flag, which
	// would show in ps. It stays in memory so the backend can log in
	// again after a device error.
	PIN string
	// MaxSessions caps the operation sessions, not counting the login
	// session. 0 means min(the token's limit less one, DefaultMaxSessions);
	// a larger value than the token allows is lowered to its limit.
	MaxSessions int
	// DomainKeyLabelPrefix is the CKA_LABEL prefix of DK objects. It must
	// not end in a digit, or "v1"+"2" and "v12" would be the same label.
	DomainKeyLabelPrefix string
	// RequireTrustedWrap makes DK versions this HSM generates or imports
	// CKA_WRAP_WITH_TRUSTED: enrolment can then wrap them only to a
	// transport key the token's security officer marked trusted
	// (TrustTransportKey), an SO approval per joining HSM. False (the
	// default): the logged-in node wraps its DK to any joiner the
	// cluster's join authorization admits. DESIGN.md "Enrolment".
	RequireTrustedWrap bool
}

// DefaultConfig returns a Config with the default label prefix and session
// cap; ModulePath, TokenLabel and PIN must still be set.
func DefaultConfig() Config {
	return Config{DomainKeyLabelPrefix: DefaultDomainKeyLabelPrefix}
}

// Validate checks the Config without touching the module. Its errors never
// contain the PIN.
func (c Config) Validate() error {
	switch {
	case c.ModulePath == "":
		return fmt.Errorf("%w: module path is empty", ErrInvalidConfig)
	case c.TokenLabel == "":
		return fmt.Errorf("%w: token label is empty", ErrInvalidConfig)
	case len(c.TokenLabel) > maxLabel:
		return fmt.Errorf("%w: token label %q longer than %d bytes", ErrInvalidConfig, c.TokenLabel, maxLabel)
	case c.PIN == "":
		return fmt.Errorf("%w: PIN is empty (read it from a file or an environment variable)", ErrInvalidConfig)
	case c.MaxSessions < 0 || c.MaxSessions > 1024:
		return fmt.Errorf("%w: max sessions %d outside 0..1024", ErrInvalidConfig, c.MaxSessions)
	case c.DomainKeyLabelPrefix == "":
		return fmt.Errorf("%w: domain key label prefix is empty", ErrInvalidConfig)
	case len(c.DomainKeyLabelPrefix) > maxLabel-10:
		return fmt.Errorf("%w: domain key label prefix longer than %d bytes", ErrInvalidConfig, maxLabel-10)
	case strings.ContainsAny(c.DomainKeyLabelPrefix[len(c.DomainKeyLabelPrefix)-1:], "0123456789"):
		return fmt.Errorf("%w: domain key label prefix %q ends in a digit", ErrInvalidConfig, c.DomainKeyLabelPrefix)
	}
	return nil
}

// String describes the Config with the PIN redacted.
func (c Config) String() string {
	return fmt.Sprintf("pkcs11.Config{ModulePath:%q TokenLabel:%q PIN:%s MaxSessions:%d DomainKeyLabelPrefix:%q RequireTrustedWrap:%t}",
		c.ModulePath, c.TokenLabel, redacted(c.PIN), c.MaxSessions, c.DomainKeyLabelPrefix, c.RequireTrustedWrap)
}

// GoString keeps %#v from printing the PIN.
func (c Config) GoString() string { return c.String() }

// LogValue keeps slog from printing the PIN.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("module", c.ModulePath),
		slog.String("token", c.TokenLabel),
		slog.String("pin", redacted(c.PIN)),
		slog.Int("max_sessions", c.MaxSessions),
		slog.String("dk_label_prefix", c.DomainKeyLabelPrefix),
		slog.Bool("require_trusted_wrap", c.RequireTrustedWrap),
	)
}

func redacted(pin string) string {
	if pin == "" {
		return "<unset>"
	}
	return "<redacted>"
}

// Sentinel errors of this backend; the hsm package's sentinels cover the
// rest (hsm.ErrUnavailable, hsm.ErrNoDomainKey, ...). Start-up errors name
// the module, token or mechanism and never the PIN.
var (
	// ErrInvalidConfig: the Config cannot be used.
	ErrInvalidConfig = errors.New("pkcs11: invalid config")
	// ErrModule: the module file is missing or is not a PKCS#11 library.
	ErrModule = errors.New("pkcs11: cannot load module")
	// ErrTokenNotFound: no token carries the configured label.
	ErrTokenNotFound = errors.New("pkcs11: token not found")
	// ErrWrongPIN: the token refused the PIN.
	ErrWrongPIN = errors.New("pkcs11: wrong PIN")
	// ErrMechanism: the token lacks a mechanism Meridian needs.
	ErrMechanism = errors.New("pkcs11: mechanism missing")
	// ErrTokenInUse: this process already has the token open. Login state
	// is per token and process, so a second HSM on it would share (and on
	// Close, end) the first one's login.
	ErrTokenInUse = errors.New("pkcs11: token already open in this process")
	// ErrDomainKeyExists: InitDomainKey found a DK already on the token.
	ErrDomainKeyExists = errors.New("pkcs11: domain key already present")
	// ErrDomainKeyPolicy: the token refused the DK's attribute template.
	ErrDomainKeyPolicy = errors.New("pkcs11: token refused the domain key attributes")
)
