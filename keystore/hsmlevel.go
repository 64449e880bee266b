package keystore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridiankms/meridian/fsm/fsmpb"
	"github.com/meridiankms/meridian/hsm"
)

// Protection level HSM: a version is imported into the HSM (its KeyOps) as
// a non-extractable object, cached per (key, version) as a handle, and
// every private or secret operation runs there. Public-key operations stay
// in Go with the replicated public key. Behaviour, errors and formats match
// SOFTWARE keys, except the symmetric ciphertext format (formatHSMSymmetric:
// AES-256-GCM with a 96-bit random nonce; see docs/CRYPTO.md).

var protectionHSMNumber = enumNumber(protectionByNumber, ProtectionHSM)

// hsmLevel reports whether k's versions live in the HSM.
func hsmLevel(k *fsmpb.Key) bool { return k.GetProtectionLevel() == protectionHSMNumber }

// hsmKinds maps a key spec to what its versions are inside the HSM.
var hsmKinds = map[KeySpec]hsm.KeyKind{
	SpecSymmetricDefault: hsm.KindAES256,
	SpecHMAC256:          hsm.KindHMACSHA256,
	SpecHMAC384:          hsm.KindHMACSHA384,
	SpecHMAC512:          hsm.KindHMACSHA512,
	SpecRSA2048:          hsm.KindRSAPrivate,
	SpecRSA3072:          hsm.KindRSAPrivate,
	SpecRSA4096:          hsm.KindRSAPrivate,
	SpecECCP256:          hsm.KindECDSAPrivate,
	SpecECCP384:          hsm.KindECDSAPrivate,
	SpecECCP521:          hsm.KindECDSAPrivate,
}

// backendName names this node's HSM backend for messages.
func backendName(h hsm.HSM) string {
	if b := h.Info().Backend; b != "" {
		return b
	}
	return fmt.Sprintf("%T", h)
}

// keyOps is this node's HSM's KeyOps, for a key of protection level HSM.
// A node whose backend cannot run key operations is Unavailable for such
// keys (a node with a capable backend may serve them).
func (s *Store) keyOps(k *fsmpb.Key) (hsm.KeyOps, error) {
	ops, ok := s.hsm.KeyOps()
	if !ok {
		return nil, userErr(ErrUnavailable, "key %s has protection level HSM, and node %s's HSM backend (%s) cannot run key operations",
			k.GetId(), s.nodeName(), backendName(s.hsm))
	}
	return ops, nil
}

// importMaterial imports an HSM-level version into the HSM.
func (s *Store) importMaterial(ctx context.Context, k *fsmpb.Key, v *fsmpb.KeyVersion) (*material, error) {
	ops, err := s.keyOps(k)
	if err != nil {
		return nil, err
	}
	spec := keySpec(k)
	kind, ok := hsmKinds[spec]
	if !ok {
		return nil, fmt.Errorf("import key %s v%d: %w: key spec %q has no HSM kind", k.GetId(), v.GetVersion(), ErrInternal, spec)
	}
	h, err := ops.ImportWrapped(ctx, v.GetDomainKeyVersion(), v.GetWrappedMaterial(), kind)
	if err != nil {
		return nil, hsmErr(fmt.Sprintf("import key %s v%d into the HSM", k.GetId(), v.GetVersion()), err)
	}
	id, ver := k.GetId(), v.GetVersion()
	m := &material{ops: ops, handle: h, macHash: specs[spec].hash}
	m.onWipe = func() { s.reaper.destroy(ops, h, id, ver) }
	m.refs.Store(1)
	return m, nil
}

// withMaterial runs fn with version v's material. When the HSM has lost
// the handle (it restarted, or a session died with its objects), the stale
// entry is dropped and fn runs once more with a fresh import.
func (s *Store) withMaterial(ctx context.Context, k *fsmpb.Key, v *fsmpb.KeyVersion, fn func(m *material) error) error {
	for retried := false; ; retried = true {
		m, err := s.material(ctx, k, v)
		if err != nil {
			return err
		}
		err = fn(m)
		m.release()
		if retried || !errors.Is(err, hsm.ErrHandleInvalid) {
			return err
		}
		s.cache.drop(cacheKey{k.GetId(), slot{version: v.GetVersion()}}, m)
		s.log.Info("HSM key handle lost; importing the version again", "key", k.GetId(), "version", v.GetVersion())
	}
}

// hsmDecryptErr maps a failed decryption inside the HSM like the SOFTWARE
// path: whatever the ciphertext's bytes can cause is the one
// errInvalidCiphertext; a device, session or handle failure is not about
// the bytes and stays an HSM error (Unavailable, so the client retries
// elsewhere, or the handle retry of withMaterial).
func hsmDecryptErr(op string, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, hsm.ErrUnavailable), errors.Is(err, hsm.ErrClosed),
		errors.Is(err, hsm.ErrNoDomainKey), errors.Is(err, hsm.ErrHandleInvalid):
		return hsmErr(op, err)
	case errors.Is(err, hsm.ErrUnsupported):
		// The token lacks the mechanism (SoftHSM: OAEP with SHA-1 only); the
		// ciphertext may be fine, so do not call it invalid.
		return userErr(ErrUnsupported, "%s: this node's HSM does not support that algorithm for HSM-level keys (SoftHSM supports RSAES_OAEP_SHA_1 only)", op)
	}
	return errInvalidCiphertext
}

// HSM-level symmetric ciphertexts are AES-256-GCM with 96-bit random nonces,
// so a version is good for about 2^32 encryptions (NIST SP 800-38D). Each
// node counts its encryptions per version and warns from 2^30 on, every
// 2^28 more, so operators rotate such keys in time.
const (
	gcmWarnAt    = 1 << 30
	gcmWarnEvery = 1 << 28
)

// sealHSM builds a formatHSMSymmetric blob: Meridian draws the nonce
// (never empty: some HSMs accept an empty IV), the HSM seals with the
// header and the encoded context as AAD.
func (s *Store) sealHSM(ctx context.Context, m *material, keyID string, version uint32, pt, ctxEnc []byte) ([]byte, error) {
	hdr := headerSize(formatHSMSymmetric, keyID)
	out, err := appendHeader(make([]byte, 0, hdr+len(pt)+gcmTagSize), formatHSMSymmetric, keyID, version)
	if err != nil {
		return nil, err
	}
	out = out[:hdr]
	nonce := out[hdr-gcmNonceSize : hdr]
	rand.Read(nonce) // never fails: crypto/rand crashes the program instead
	aad := append(append(make([]byte, 0, hdr+len(ctxEnc)), out...), ctxEnc...)
	sealed, err := m.ops.EncryptGCM(ctx, m.handle, nonce, pt, aad)
	if err != nil {
		return nil, hsmErr(fmt.Sprintf("encrypt with key %s v%d in the HSM", keyID, version), err)
	}
	if len(sealed) != len(pt)+gcmTagSize {
		return nil, fmt.Errorf("encrypt with key %s v%d in the HSM: %w: %d sealed bytes for %d plaintext bytes", keyID, version, ErrInternal, len(sealed), len(pt))
	}
	s.countGCM(keyID, version)
	return append(out, sealed...), nil
}

// countGCM counts an HSM-level encryption and warns as the version nears
// the random-nonce bound.
func (s *Store) countGCM(keyID string, version uint32) {
	ck := cacheKey{keyID, slot{version: version}}
	c, ok := s.gcmUses.Load(ck)
	if !ok {
		c, _ = s.gcmUses.LoadOrStore(ck, new(atomic.Uint64))
	}
	n := c.(*atomic.Uint64).Add(1)
	if n >= s.gcmWarnAt && (n-s.gcmWarnAt)%s.gcmWarnEvery == 0 {
		s.log.Warn("HSM-level key version nears the AES-GCM random-nonce limit of about 2^32 encryptions; rotate the key",
			"key", keyID, "version", version, "encryptions_on_this_node", n)
	}
}

// openHSM opens a formatHSMSymmetric blob inside the HSM.
func openHSM(ctx context.Context, m *material, c ciphertext, ctxEnc []byte) ([]byte, error) {
	aad := append(append(make([]byte, 0, len(c.header)+len(ctxEnc)), c.header...), ctxEnc...)
	pt, err := m.ops.DecryptGCM(ctx, m.handle, c.nonce, c.body, aad)
	if err != nil {
		return nil, hsmDecryptErr(fmt.Sprintf("decrypt with key %s v%d in the HSM", c.keyID, c.version), err)
	}
	return pt, nil
}

// handleReaper destroys HSM objects of evicted versions off the caller's
// goroutine: eviction runs on raft's apply goroutine under the cache lock,
// which must not wait for a token. Close waits for the destroys it started.
type handleReaper struct {
	log    func(msg string, args ...any)
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// destroyTimeout bounds one Destroy: a hung token must not keep Close.
const destroyTimeout = 10 * time.Second

func (r *handleReaper) destroy(ops hsm.KeyOps, h hsm.KeyHandle, keyID string, version uint32) {
	run := func() {
		ctx, cancel := context.WithTimeout(context.Background(), destroyTimeout)
		defer cancel()
		err := ops.Destroy(ctx, h)
		// Gone already (HSM restarted or closed) is the outcome we wanted.
		if err != nil && !errors.Is(err, hsm.ErrHandleInvalid) && !errors.Is(err, hsm.ErrClosed) {
			r.log("destroy HSM key object", "key", keyID, "version", version, "err", err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		// A release after Close (an operation that outlived it): nobody
		// waits any more, but the object is still destroyed.
		go run()
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		run()
	}()
}

// close waits for every destroy started before it.
func (r *handleReaper) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.wg.Wait()
}
