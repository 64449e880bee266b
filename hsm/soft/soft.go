package soft

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/meridiankms/meridian/hsm"
)

// HSM is the soft backend. It is safe for concurrent use.
type HSM struct {
	path string

	mu     sync.RWMutex
	closed bool
	hdr    header    // the current file's header (KDF params, salt)
	kek    []byte    // argon2id output; re-seals on rotation
	set    []dkEntry // ascending by version
	blocks map[uint32]cipher.Block

	transport transportKey // enrolment key pair (enrol.go)
}

var _ hsm.HSM = (*HSM)(nil)

// KeyOps: the soft backend runs every key operation (keyops.go).
func (h *HSM) KeyOps() (hsm.KeyOps, bool) { return h, true }

// Enroller: the soft backend enrols (enrol.go).
func (h *HSM) Enroller() (hsm.Enroller, bool) { return h, true }

// DomainKeyRotator: the soft backend adds DK versions (RotateDomainKey).
func (h *HSM) DomainKeyRotator() (hsm.DomainKeyRotator, bool) { return h, true }

// Token: none; the soft backend is no device with mechanisms.
func (h *HSM) Token() (hsm.Token, bool) { return nil, false }

// Create makes a new sealed file at cfg.Path holding DK version 1 and
// returns the open HSM. It fails with ErrExists if the path is taken.
func Create(ctx context.Context, cfg Config) (*HSM, error) {
	return create(ctx, cfg, "create", true)
}

// create makes a new sealed file holding DK version 1 when withDK, or no
// DK version at all (CreateEmpty).
func create(ctx context.Context, cfg Config, op string, withDK bool) (*HSM, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("soft hsm: %s %s: %w", op, cfg.Path, err)
	}
	h := &HSM{path: cfg.Path, hdr: header{kdf: cfg.KDF}}
	if _, err := rand.Read(h.hdr.salt[:]); err != nil {
		return nil, fmt.Errorf("soft hsm: %s %s: salt: %w", op, cfg.Path, err)
	}
	h.kek = deriveKEK(cfg.Passphrase, h.hdr)
	if err := ctx.Err(); err != nil { // argon2id cannot be interrupted
		clear(h.kek)
		return nil, fmt.Errorf("soft hsm: %s %s: %w", op, cfg.Path, err)
	}
	var set []dkEntry
	if withDK {
		dk := make([]byte, dkLen)
		if _, err := rand.Read(dk); err != nil {
			clear(h.kek)
			return nil, fmt.Errorf("soft hsm: %s %s: domain key: %w", op, cfg.Path, err)
		}
		set = []dkEntry{{version: 1, key: dk}}
	}
	if err := h.commit(set, true); err != nil {
		clear(h.kek)
		for _, e := range set {
			clear(e.key)
		}
		return nil, fmt.Errorf("soft hsm: %s %s: %w", op, cfg.Path, err)
	}
	return h, nil
}

// Open loads the sealed file at cfg.Path with cfg.Passphrase, using the
// file's own KDF parameters (cfg.KDF is ignored). A wrong passphrase or a
// damaged file gives hsm.ErrBadPassphrase; a missing file an error
// wrapping fs.ErrNotExist.
func Open(ctx context.Context, cfg Config) (*HSM, error) {
	if err := validateOpen(cfg); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("soft hsm: open %s: %w", cfg.Path, err)
	}
	file, err := readSealed(cfg.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("soft hsm: sealed key file %s does not exist; create one first (meridian demo and bootstrap do): %w", cfg.Path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("soft hsm: open %s: %w", cfg.Path, badFile(err))
	}
	hdr, ct, err := parseSealed(file)
	if err != nil {
		return nil, fmt.Errorf("soft hsm: open %s: %w", cfg.Path, badFile(err))
	}
	kek := deriveKEK(cfg.Passphrase, hdr)
	if err := ctx.Err(); err != nil {
		clear(kek)
		return nil, fmt.Errorf("soft hsm: open %s: %w", cfg.Path, err)
	}
	set, err := openSet(kek, hdr, file[:headerLen], ct)
	if err != nil {
		clear(kek)
		return nil, fmt.Errorf("soft hsm: open %s: %w", cfg.Path, err)
	}
	h := &HSM{path: cfg.Path, hdr: hdr, kek: kek}
	if err := h.install(set); err != nil {
		h.wipe()
		return nil, fmt.Errorf("soft hsm: open %s: %w", cfg.Path, err)
	}
	return h, nil
}

// OpenOrCreate opens the sealed file, or creates it when it does not exist
// yet: the start-up path of `meridian demo` and of a bootstrapping node.
func OpenOrCreate(ctx context.Context, cfg Config) (*HSM, error) {
	return openOr(ctx, cfg, Create)
}

// openOr opens the sealed file, or makes it with newFile when it does not
// exist yet; newFile is Create or CreateEmpty.
func openOr(ctx context.Context, cfg Config, newFile func(context.Context, Config) (*HSM, error)) (*HSM, error) {
	h, err := Open(ctx, cfg)
	if !errors.Is(err, fs.ErrNotExist) {
		return h, err
	}
	h, err = newFile(ctx, cfg)
	if errors.Is(err, ErrExists) { // another process created it meanwhile
		return Open(ctx, cfg)
	}
	return h, err
}

// validateOpen checks what Open needs; the KDF comes from the file.
func validateOpen(cfg Config) error {
	cfg.KDF = DefaultKDFParams()
	return cfg.Validate()
}

// badFile marks errors about the file's content (not about reaching it) as
// hsm.ErrBadPassphrase, the one error callers test for.
func badFile(err error) error {
	if errors.Is(err, ErrFormat) {
		return fmt.Errorf("%w: %w", hsm.ErrBadPassphrase, err)
	}
	return err
}

func deriveKEK(passphrase []byte, h header) []byte {
	return argon2.IDKey(passphrase, h.salt[:], h.kdf.Time, h.kdf.MemoryKiB, h.kdf.Threads, 32)
}

func newGCM(kek []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// openSet decrypts and parses the DK set. GCM cannot tell a wrong
// passphrase from a changed byte, and neither should the error.
func openSet(kek []byte, hdr header, aad, ct []byte) ([]dkEntry, error) {
	aead, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, hdr.nonce[:], ct, aad)
	if err != nil {
		return nil, hsm.ErrBadPassphrase
	}
	defer clear(pt)
	set, err := parseSet(pt)
	if err != nil {
		return nil, badFile(err)
	}
	return set, nil
}

// commit seals set under the KEK with a fresh nonce, writes it, and only
// then makes it the in-memory set: a failed write leaves the HSM as it
// was. The caller holds h.mu for writing (or owns h exclusively). This is
// the one path that changes the DK set - rotation now, enrolment later.
func (h *HSM) commit(set []dkEntry, create bool) error {
	hdr := h.hdr
	if _, err := rand.Read(hdr.nonce[:]); err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	aead, err := newGCM(h.kek)
	if err != nil {
		return err
	}
	pt := marshalSet(set)
	defer clear(pt)
	aad := hdr.marshal()
	file := aead.Seal(aad, hdr.nonce[:], pt, aad)
	if err := writeSealed(h.path, file, create); err != nil {
		return err
	}
	h.hdr = hdr
	return h.install(set)
}

// install makes set the in-memory DK set and caches one AES block per
// version, so Wrap/Unwrap skip the key expansion.
func (h *HSM) install(set []dkEntry) error {
	blocks := make(map[uint32]cipher.Block, len(set))
	for _, e := range set {
		b, err := aes.NewCipher(e.key)
		if err != nil {
			return fmt.Errorf("domain key v%d: %w", e.version, err)
		}
		blocks[e.version] = b
	}
	h.set, h.blocks = set, blocks
	return nil
}
