package identity

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Config configures a Source. Zero values take DefaultConfig's values.
type Config struct {
	// CertFile is this process's certificate, PEM, leaf first, then any
	// intermediates. Empty (with KeyFile) for a Source that only verifies
	// servers, such as an anonymous CLI.
	CertFile string
	// KeyFile is the private key of CertFile (PEM: PKCS#8, PKCS#1 or SEC 1).
	// It may be the same file as CertFile.
	KeyFile string
	// CAFile is the CA bundle, PEM, one or more CA certificates. Every CA in
	// it is trusted for every plane: during a CA rotation it holds the old and
	// the new CA.
	CAFile string
	// TrustDomain is the cluster's SPIFFE trust domain ("meridian.example"
	// or "spiffe://meridian.example"). Empty: the trust domain of CertFile's
	// SPIFFE ID, or else the one the bundle's CAs name. It is fixed for the
	// Source's life; a reload that would change it fails.
	TrustDomain string
	// Logger receives reload and watch logs (nil: discard). Certificate
	// identities, serials and expiry are logged; key material never is.
	Logger *slog.Logger
	// WatchDebounce is how long Watch waits after a file event for the
	// others to follow before reloading, so that a certificate and its key
	// replaced one after the other are read as a pair.
	WatchDebounce time.Duration
	// MaxRetryInterval caps the backoff with which Watch retries a reload
	// that failed (say, the key of a new certificate not written yet) until
	// one succeeds.
	MaxRetryInterval time.Duration
	// Now is the clock for validity checks, at load and at every handshake;
	// tests inject one.
	Now func() time.Time
}

// DefaultConfig returns the production defaults (no files: callers set
// them).
func DefaultConfig() Config {
	return Config{
		Logger:           slog.New(slog.DiscardHandler),
		WatchDebounce:    200 * time.Millisecond,
		MaxRetryInterval: time.Minute,
		Now:              time.Now,
	}
}

// errInvalidConfig marks Config.Validate failures.
var errInvalidConfig = errors.New("invalid identity config")

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.WatchDebounce == 0 {
		c.WatchDebounce = d.WatchDebounce
	}
	if c.MaxRetryInterval == 0 {
		c.MaxRetryInterval = d.MaxRetryInterval
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c
}

// Validate reports a Config that cannot work (after defaults are applied).
// It does not read the files: NewSource does, and says what is wrong with
// them.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.CAFile == "":
		return fmt.Errorf("%w: a CA bundle file is required", errInvalidConfig)
	case (c.CertFile == "") != (c.KeyFile == ""):
		return fmt.Errorf("%w: certificate file %q and key file %q: set both or neither", errInvalidConfig, c.CertFile, c.KeyFile)
	case c.WatchDebounce < 0:
		return fmt.Errorf("%w: watch debounce %v is negative", errInvalidConfig, c.WatchDebounce)
	case c.MaxRetryInterval < 0:
		return fmt.Errorf("%w: max retry interval %v is negative", errInvalidConfig, c.MaxRetryInterval)
	}
	if c.TrustDomain != "" {
		if _, err := spiffeid.TrustDomainFromString(c.TrustDomain); err != nil {
			return fmt.Errorf("%w: trust domain %q: %v", errInvalidConfig, c.TrustDomain, err)
		}
	}
	return nil
}
