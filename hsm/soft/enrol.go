package soft

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // OAEP's hash; see hsm.Enroller for why SHA-1
	"crypto/x509"
	"fmt"
	"math/big"
	"slices"
	"sync"

	"github.com/meridiankms/meridian/hsm"
)

var _ hsm.Enroller = (*HSM)(nil)

// transportBits is the size of the enrolment key pair.
const transportBits = 3072

// transportKey is the soft backend's enrolment key pair. The soft "HSM" is
// the process, so the private key lives in process memory, as the DK set
// does; it is never written anywhere.
type transportKey struct {
	mu   sync.Mutex
	priv *rsa.PrivateKey
	pub  []byte // PKIX DER of priv's public half
}

// wipe zeroes the private key's secret integers and forgets the pair. It
// is best effort: crypto/rsa keeps its own precomputed copy of the key,
// which no caller can reach and which becomes garbage here.
func (t *transportKey) wipe() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.priv != nil {
		wipeRSA(t.priv)
	}
	t.priv, t.pub = nil, nil
}

func wipeRSA(k *rsa.PrivateKey) {
	ints := append([]*big.Int{k.D, k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv}, k.Primes...)
	for _, n := range ints {
		if n != nil {
			clear(n.Bits())
			n.SetInt64(0)
		}
	}
}

// CreateEmpty makes a sealed file at cfg.Path holding no DK version: the
// start of a node that will receive the DK by enrolment
// (ImportDomainKeys). Until then Health and CurrentDomainKeyVersion give
// hsm.ErrNoDomainKey. It fails with ErrExists if the path is taken.
func CreateEmpty(ctx context.Context, cfg Config) (*HSM, error) {
	return create(ctx, cfg, "create empty", false)
}

// OpenOrCreateEmpty opens the sealed file, or creates one with no DK when
// none exists: the start-up path of a node that joins a cluster. A node
// restarted after enrolment opens the file its import re-sealed.
func OpenOrCreateEmpty(ctx context.Context, cfg Config) (*HSM, error) {
	return openOr(ctx, cfg, CreateEmpty)
}

// TransportPublicKey returns the PKIX DER public key of this node's
// enrolment key pair (RSA-3072), generating the pair on first use. The
// pair lives until ImportDomainKeys succeeds or the HSM closes.
func (h *HSM) TransportPublicKey(ctx context.Context) ([]byte, error) {
	if pub, err := h.transportPub(ctx); pub != nil || err != nil {
		return pub, err
	}
	// Generated outside every lock: it takes about a second, and Wrap and
	// Unwrap must not wait for it.
	priv, err := rsa.GenerateKey(rand.Reader, transportBits)
	if err != nil {
		return nil, fmt.Errorf("soft hsm: transport key: %w: %w", hsm.ErrUnavailable, err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		wipeRSA(priv)
		return nil, fmt.Errorf("soft hsm: transport key: %w", err)
	}
	if err := h.begin(ctx, "transport key"); err != nil {
		wipeRSA(priv)
		return nil, err
	}
	defer h.mu.RUnlock()
	t := &h.transport
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.priv != nil { // a concurrent caller won; everyone gets one pair
		wipeRSA(priv)
	} else {
		t.priv, t.pub = priv, der
	}
	return slices.Clone(t.pub), nil
}

// transportPub returns the current pair's public key, or nil if there is
// none yet.
func (h *HSM) transportPub(ctx context.Context) ([]byte, error) {
	if err := h.begin(ctx, "transport key"); err != nil {
		return nil, err
	}
	defer h.mu.RUnlock()
	h.transport.mu.Lock()
	defer h.transport.mu.Unlock()
	return slices.Clone(h.transport.pub), nil
}

// ExportDomainKeys wraps every DK version held to transportPub with
// RSA-OAEP (SHA-1, MGF1-SHA-1, no label), the mechanism SoftHSM can
// unwrap, so a PKCS#11 node can enrol from a soft one.
func (h *HSM) ExportDomainKeys(ctx context.Context, transportPub []byte) (*hsm.DomainKeyBundle, error) {
	pub, err := hsm.ParseTransportPublicKey(transportPub)
	if err != nil {
		return nil, fmt.Errorf("soft hsm: export domain keys: %w", err)
	}
	if err := h.begin(ctx, "export domain keys"); err != nil {
		return nil, err
	}
	defer h.mu.RUnlock()
	if len(h.set) == 0 {
		return nil, fmt.Errorf("soft hsm: export domain keys: %w", hsm.ErrNoDomainKey)
	}
	if len(h.set) > hsm.MaxBundleVersions {
		return nil, fmt.Errorf("soft hsm: export domain keys: %d versions, a bundle carries at most %d", len(h.set), hsm.MaxBundleVersions)
	}
	b := &hsm.DomainKeyBundle{Versions: make([]hsm.WrappedDomainKey, 0, len(h.set))}
	for _, e := range h.set {
		w, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, e.key, nil)
		if err != nil {
			return nil, fmt.Errorf("soft hsm: export dk v%d: %w", e.version, err)
		}
		b.Versions = append(b.Versions, hsm.WrappedDomainKey{Version: e.version, Wrapped: w})
	}
	return b, nil
}

// ImportDomainKeys unwraps the versions of b this HSM lacks with the
// transport private key, adds them to the DK set and re-seals the file
// (atomically, as RotateDomainKey does), so a restarted node still holds
// them. It is all or nothing: one bad entry changes nothing. On success
// the transport private key is wiped; a bundle whose versions are all
// held already is a no-op that needs no key.
func (h *HSM) ImportDomainKeys(ctx context.Context, b *hsm.DomainKeyBundle) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("soft hsm: import domain keys: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("soft hsm: import domain keys: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("soft hsm: import domain keys: %w", hsm.ErrClosed)
	}
	var need []hsm.WrappedDomainKey
	for _, w := range b.Versions {
		if _, held := h.blocks[w.Version]; !held {
			need = append(need, w)
		}
	}
	if len(need) == 0 {
		return nil
	}
	if len(h.set)+len(need) > maxDKVersions {
		return fmt.Errorf("soft hsm: import domain keys: %d versions is more than a sealed file holds", len(h.set)+len(need))
	}
	added, err := h.unwrapTransport(need)
	if err != nil {
		return fmt.Errorf("soft hsm: import domain keys: %w", err)
	}
	set := append(slices.Clone(h.set), added...)
	slices.SortFunc(set, func(a, b dkEntry) int { return cmp.Compare(a.version, b.version) })
	if err := h.commit(set, false); err != nil {
		for _, e := range added {
			clear(e.key)
		}
		return fmt.Errorf("soft hsm: import domain keys: %w", err)
	}
	h.transport.wipe()
	return nil
}

// unwrapTransport decrypts each wrapped DK with the transport private key.
// Any failure wipes what it decrypted and gives hsm.ErrUnwrap, the same
// for every cause, so the error is no padding oracle.
func (h *HSM) unwrapTransport(ws []hsm.WrappedDomainKey) ([]dkEntry, error) {
	t := &h.transport
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.priv == nil {
		return nil, fmt.Errorf("no transport key pair (TransportPublicKey makes one; a successful import uses it up): %w", hsm.ErrUnwrap)
	}
	out := make([]dkEntry, 0, len(ws))
	for _, w := range ws {
		dk, err := rsa.DecryptOAEP(sha1.New(), nil, t.priv, w.Wrapped, nil)
		if err != nil || len(dk) != dkLen {
			clear(dk)
			for _, e := range out {
				clear(e.key)
			}
			return nil, fmt.Errorf("dk v%d: %w", w.Version, hsm.ErrUnwrap)
		}
		out = append(out, dkEntry{version: w.Version, key: dk})
	}
	return out, nil
}
