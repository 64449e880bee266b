package soft

import (
	"errors"
	"fmt"
	"log/slog"
)

// KDFParams are the argon2id parameters that turn the passphrase into the
// key-encryption key. They are stored in the sealed file, so these only
// matter when a file is created.
type KDFParams struct {
	// Time is the number of passes over memory.
	Time uint32
	// MemoryKiB is the memory used, in KiB.
	MemoryKiB uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// Bounds on KDFParams, enforced both when creating a file and when opening
// one: a file is outside input, and a hostile header asking for 1 TiB of
// memory must be refused before argon2id allocates it.
const (
	MinKDFTime      = 1
	MaxKDFTime      = 64
	MinKDFMemoryKiB = 8 * 1024        // 8 MiB: the floor tests use
	MaxKDFMemoryKiB = 2 * 1024 * 1024 // 2 GiB, RFC 9106 option 1
	MinKDFThreads   = 1
	MaxKDFThreads   = 64
	// MinPassphrase is the shortest passphrase accepted, in bytes.
	MinPassphrase = 8
)

// DefaultKDFParams are the production argon2id parameters: RFC 9106's
// second recommended option scaled to a node that must open its file in
// well under a second at start-up.
func DefaultKDFParams() KDFParams {
	return KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 2}
}

// Validate reports whether the parameters are inside the accepted bounds.
func (p KDFParams) Validate() error {
	switch {
	case p.Time < MinKDFTime || p.Time > MaxKDFTime:
		return fmt.Errorf("%w: argon2id time %d outside %d..%d", ErrInvalidConfig, p.Time, MinKDFTime, MaxKDFTime)
	case p.MemoryKiB < MinKDFMemoryKiB || p.MemoryKiB > MaxKDFMemoryKiB:
		return fmt.Errorf("%w: argon2id memory %d KiB outside %d..%d", ErrInvalidConfig, p.MemoryKiB, MinKDFMemoryKiB, MaxKDFMemoryKiB)
	case p.Threads < MinKDFThreads || p.Threads > MaxKDFThreads:
		return fmt.Errorf("%w: argon2id threads %d outside %d..%d", ErrInvalidConfig, p.Threads, MinKDFThreads, MaxKDFThreads)
	}
	return nil
}

// Config says where the sealed DK file is and how to open it. It holds the
// passphrase, so String, GoString and LogValue redact it: a Config may be
// logged, its passphrase never.
type Config struct {
	// Path of the sealed DK file. Its directory must exist.
	Path string
	// Passphrase seals and opens the file; at least MinPassphrase bytes.
	// It is used only during Create/Open and never retained, so the caller
	// may wipe it once they return.
	Passphrase []byte
	// KDF is used when a file is created; Open uses the file's own.
	KDF KDFParams
}

// DefaultConfig returns a Config with production KDF parameters; Path and
// Passphrase must still be set.
func DefaultConfig() Config {
	return Config{KDF: DefaultKDFParams()}
}

// Validate checks the Config. Its errors never contain the passphrase.
func (c Config) Validate() error {
	if c.Path == "" {
		return fmt.Errorf("%w: sealed key file path is empty", ErrInvalidConfig)
	}
	if len(c.Passphrase) < MinPassphrase {
		return fmt.Errorf("%w: passphrase too short: at least %d bytes are required", ErrInvalidConfig, MinPassphrase)
	}
	return c.KDF.Validate()
}

// String describes the Config with the passphrase redacted.
func (c Config) String() string {
	return fmt.Sprintf("soft.Config{Path:%q Passphrase:%s KDF:%+v}", c.Path, redacted(c.Passphrase), c.KDF)
}

// GoString keeps %#v from printing the passphrase.
func (c Config) GoString() string { return c.String() }

// LogValue keeps slog from printing the passphrase.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("path", c.Path),
		slog.String("passphrase", redacted(c.Passphrase)),
		slog.Any("kdf", c.KDF),
	)
}

func redacted(passphrase []byte) string {
	if len(passphrase) == 0 {
		return "<unset>"
	}
	return "<redacted>"
}

// Sentinel errors of this backend; the hsm package's sentinels cover the
// rest.
var (
	// ErrInvalidConfig: the Config (or KDF parameters) cannot be used.
	ErrInvalidConfig = errors.New("soft hsm: invalid config")
	// ErrExists: Create found a file already at the path; it never
	// overwrites one, since that would destroy the only copy of a DK set.
	ErrExists = errors.New("soft hsm: sealed key file already exists")
	// ErrFormat: the sealed file is not one this build can read. Open wraps
	// it together with hsm.ErrBadPassphrase.
	ErrFormat = errors.New("soft hsm: malformed sealed key file")
)
