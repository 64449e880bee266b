package soft

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/keywrap"
)

// begin checks the context and the closed flag. It returns with h.mu held
// for reading on success; the caller releases it.
func (h *HSM) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("soft hsm: %s: %w", op, err)
	}
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		return fmt.Errorf("soft hsm: %s: %w", op, hsm.ErrClosed)
	}
	return nil
}

// DomainKeyVersions lists the DK versions held, ascending.
func (h *HSM) DomainKeyVersions(ctx context.Context) ([]uint32, error) {
	if err := h.begin(ctx, "domain key versions"); err != nil {
		return nil, err
	}
	defer h.mu.RUnlock()
	vs := make([]uint32, len(h.set))
	for i, e := range h.set {
		vs[i] = e.version
	}
	return vs, nil
}

// CurrentDomainKeyVersion is the newest DK version held.
func (h *HSM) CurrentDomainKeyVersion(ctx context.Context) (uint32, error) {
	if err := h.begin(ctx, "current domain key version"); err != nil {
		return 0, err
	}
	defer h.mu.RUnlock()
	if len(h.set) == 0 {
		return 0, fmt.Errorf("soft hsm: current domain key version: %w", hsm.ErrNoDomainKey)
	}
	return h.set[len(h.set)-1].version, nil
}

// Wrap seals material under DK version dkVersion (RFC 5649).
func (h *HSM) Wrap(ctx context.Context, dkVersion uint32, material []byte) ([]byte, error) {
	if err := h.begin(ctx, "wrap"); err != nil {
		return nil, err
	}
	defer h.mu.RUnlock()
	b, ok := h.blocks[dkVersion]
	if !ok {
		return nil, fmt.Errorf("soft hsm: wrap under dk v%d: %w", dkVersion, hsm.ErrNoDomainKey)
	}
	w, err := keywrap.Wrap(b, material)
	if err != nil {
		return nil, fmt.Errorf("soft hsm: wrap %d bytes under dk v%d: %w: %w", len(material), dkVersion, hsm.ErrInvalidInput, err)
	}
	return w, nil
}

// Unwrap reverses Wrap. Every malformed or foreign blob gives hsm.ErrUnwrap.
func (h *HSM) Unwrap(ctx context.Context, dkVersion uint32, wrapped []byte) ([]byte, error) {
	if err := h.begin(ctx, "unwrap"); err != nil {
		return nil, err
	}
	defer h.mu.RUnlock()
	b, ok := h.blocks[dkVersion]
	if !ok {
		return nil, fmt.Errorf("soft hsm: unwrap under dk v%d: %w", dkVersion, hsm.ErrNoDomainKey)
	}
	pt, err := keywrap.Unwrap(b, wrapped)
	if err != nil {
		return nil, fmt.Errorf("soft hsm: unwrap under dk v%d: %w", dkVersion, hsm.ErrUnwrap)
	}
	return pt, nil
}

// Random returns n bytes from crypto/rand.
func (h *HSM) Random(ctx context.Context, n int) ([]byte, error) {
	if err := h.begin(ctx, "random"); err != nil {
		return nil, err
	}
	defer h.mu.RUnlock()
	if n < 0 {
		return nil, fmt.Errorf("soft hsm: random %d bytes: %w", n, hsm.ErrInvalidInput)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("soft hsm: random: %w: %w", hsm.ErrUnavailable, err)
	}
	return b, nil
}

// Health is nil while the HSM is open and holds a DK.
func (h *HSM) Health(ctx context.Context) error {
	if err := h.begin(ctx, "health"); err != nil {
		return err
	}
	defer h.mu.RUnlock()
	if len(h.set) == 0 {
		return fmt.Errorf("soft hsm: health: %w", hsm.ErrNoDomainKey)
	}
	return nil
}

// RotateDomainKey adds DK version n+1, re-seals the file with it, and
// returns the new version, which becomes current. Older versions stay, so
// blobs wrapped under them still unwrap. Other nodes need the new file (see
// the package doc) before they can unwrap blobs made under the new version.
func (h *HSM) RotateDomainKey(ctx context.Context) (uint32, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("soft hsm: rotate domain key: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, fmt.Errorf("soft hsm: rotate domain key: %w", hsm.ErrClosed)
	}
	var next uint32 = 1
	if len(h.set) > 0 {
		next = h.set[len(h.set)-1].version + 1
	}
	if next == 0 || len(h.set) >= maxDKVersions {
		return 0, fmt.Errorf("soft hsm: rotate domain key: %d versions is the most a sealed file holds", len(h.set))
	}
	dk := make([]byte, dkLen)
	if _, err := rand.Read(dk); err != nil {
		return 0, fmt.Errorf("soft hsm: rotate domain key: %w: %w", hsm.ErrUnavailable, err)
	}
	set := append(h.set[:len(h.set):len(h.set)], dkEntry{version: next, key: dk})
	if err := h.commit(set, false); err != nil {
		clear(dk)
		return 0, fmt.Errorf("soft hsm: rotate domain key to v%d: %w", next, err)
	}
	return next, nil
}

// Close wipes the DK set and the KEK; later calls fail with hsm.ErrClosed.
// Closing twice is harmless. The expanded AES key schedules inside
// crypto/aes cannot be wiped from outside; they become garbage here.
func (h *HSM) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		h.wipe()
	}
	return nil
}

func (h *HSM) wipe() {
	for _, e := range h.set {
		clear(e.key)
	}
	clear(h.kek)
	h.set, h.kek, h.blocks = nil, nil, nil
	h.transport.wipe()
}

// Info names the backend and the sealed file.
func (h *HSM) Info() hsm.Info {
	return hsm.Info{Backend: "soft", Detail: h.path}
}

// Path is the sealed file this HSM was opened from.
func (h *HSM) Path() string { return h.path }
