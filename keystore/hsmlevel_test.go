package keystore

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/soft"
	"github.com/meridiankms/meridian/internal/testwait"
)

// noKeyOps is an HSM backend without key operations (as a PKCS#11 module
// lacking the mechanisms would be): the soft HSM with KeyOps hidden.
type noKeyOps struct{ hsm.HSM }

func (noKeyOps) KeyOps() (hsm.KeyOps, bool) { return nil, false }

// otherNode is a second Store over the same replica and applier, with its
// own HSM: what another node of the cluster sees.
func (h *harness) otherNode(node string, x hsm.HSM) *Store {
	h.t.Helper()
	s, err := New(Config{NodeID: node, SchedulerInterval: -1, Now: h.clock.Now, Logger: testLogger(h.t)}, h.fsm, x, h.ap)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { s.Close() })
	return s
}

func TestHSMLevelNeedsKeyOps(t *testing.T) {
	h := newLevelHarness(t, Config{}, ProtectionHSM)
	plain := h.otherNode("n-plain", noKeyOps{h.hsm})
	_, _, err := plain.CreateKey(bg, CreateKeyInput{ProtectionLevel: ProtectionHSM})
	wantErr(t, err, ErrUnsupported, "protection level HSM needs an HSM backend with key operations; this node's backend (soft) has none")
	if n := h.fsm.KeyCount(); n != 0 {
		t.Fatalf("%d keys created", n)
	}

	// Keys made at a capable node: the other node cannot run their
	// private operations (Unavailable: the client goes elsewhere) but
	// serves the public-key ones, which stay in Go.
	ks := makeKeySet(t, h)
	for name, op := range map[string]func() error{
		"Encrypt": func() error {
			_, err := plain.Encrypt(bg, EncryptInput{KeyID: ks.sym.KeyID, Plaintext: []byte("x")})
			return err
		},
		"Decrypt": func() error { _, err := plain.Decrypt(bg, DecryptInput{CiphertextBlob: ks.blob}); return err },
		"Sign": func() error {
			_, err := plain.Sign(bg, SignInput{KeyID: ks.signer.KeyID, Message: []byte("m"), SigningAlgorithm: SignECDSASHA256})
			return err
		},
		"GenerateMac": func() error {
			_, err := plain.GenerateMac(bg, MacInput{KeyID: ks.mac.KeyID, Message: []byte("m"), MacAlgorithm: MacHMACSHA256})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			wantErr(t, op(), ErrUnavailable, "has protection level HSM, and node n-plain's HSM backend (soft) cannot run key operations")
		})
	}
	_, err = plain.Verify(bg, VerifyInput{KeyID: ks.signer.KeyID, Message: []byte("m"), Signature: ks.sig, SigningAlgorithm: SignECDSASHA256})
	must(t, err)
	e, err := plain.Encrypt(bg, EncryptInput{KeyID: ks.rsaEnc.KeyID, Plaintext: []byte("x"), EncryptionAlgorithm: EncRSAOAEPSHA1})
	must(t, err)
	d, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: e.CiphertextBlob, EncryptionAlgorithm: EncRSAOAEPSHA1})
	must(t, err)
	if string(d.Plaintext) != "x" {
		t.Fatalf("decrypted %q", d.Plaintext)
	}
	_, err = plain.GetPublicKey(bg, ks.signer.KeyID)
	must(t, err)
}

// An HSM-level version is a handle in the cache, never material in memory,
// and its HSM object is destroyed on disable, deletion and Close.
func TestHSMLevelHandlesDestroyed(t *testing.T) {
	h := newLevelHarness(t, Config{}, ProtectionHSM)
	mac := h.create(SpecHMAC256, "")
	sym := h.create("", "")
	other := h.create("", "")
	for _, id := range []string{sym.KeyID, other.KeyID} {
		_, err := h.s.Encrypt(bg, EncryptInput{KeyID: id, Plaintext: []byte("m")})
		must(t, err)
	}
	_, err := h.s.GenerateMac(bg, MacInput{KeyID: mac.KeyID, Message: []byte("m"), MacAlgorithm: MacHMACSHA256})
	must(t, err)
	handle := func(id string) hsm.KeyHandle {
		t.Helper()
		m := h.cached(id, 1)
		if m == nil || m.handle == nil || m.sym != nil || m.mac != nil || m.rsa != nil || m.ec != nil {
			t.Fatalf("cached HSM-level version of %s: %+v", id, m)
		}
		return m.handle
	}
	// probe runs the handle's kind of operation in the HSM.
	probe := func(kh hsm.KeyHandle) error {
		if kh.Kind() == hsm.KindAES256 {
			_, err := h.hsm.EncryptGCM(bg, kh, make([]byte, 12), []byte("m"), nil)
			return err
		}
		_, err := h.hsm.HMAC(bg, kh, []byte("m"))
		return err
	}
	gone := func(what string, kh hsm.KeyHandle) {
		t.Helper()
		testwait.Eventually(t, 10*time.Second, what, func() bool { return errors.Is(probe(kh), hsm.ErrHandleInvalid) })
	}
	macH, symH, otherH := handle(mac.KeyID), handle(sym.KeyID), handle(other.KeyID)

	_, err = h.s.DisableKey(bg, mac.KeyID)
	must(t, err)
	gone("the disabled key's HSM object to be destroyed", macH)
	_, err = h.s.ScheduleKeyDeletion(bg, sym.KeyID, 7)
	must(t, err)
	gone("the pending key's HSM object to be destroyed", symH)
	if err := probe(otherH); err != nil {
		t.Fatalf("an untouched key's handle stopped working: %v", err)
	}
	must(t, h.s.Close())
	// Close waits for its destroys: no polling needed.
	if err := probe(otherH); !errors.Is(err, hsm.ErrHandleInvalid) {
		t.Fatalf("after Close the handle still works: %v", err)
	}
}

// A handle the HSM lost (restart, dead session) is imported again, once,
// and the operation succeeds.
func TestHSMLevelReimportsLostHandle(t *testing.T) {
	h := newLevelHarness(t, Config{}, ProtectionHSM)
	ks := makeKeySet(t, h)
	ops := cryptoOps(h, ks)
	for _, op := range ops {
		must(t, op()) // every private slot imported
	}
	var lost []hsm.KeyHandle
	for _, id := range ks.ids() {
		m := h.cached(id, 1)
		if m == nil || m.handle == nil {
			t.Fatalf("key %s: no handle cached", id)
		}
		lost = append(lost, m.handle)
		must(t, h.hsm.Destroy(bg, m.handle))
	}
	for name, op := range ops {
		if err := op(); err != nil {
			t.Fatalf("%s after the HSM lost its handles: %v", name, err)
		}
	}
	for i, id := range ks.ids() {
		if m := h.cached(id, 1); m == nil || m.handle == nil || m.handle == lost[i] {
			t.Fatalf("key %s: no fresh handle cached", id)
		}
	}
}

// faultyOps injects KeyOps failures the soft backend cannot produce.
type faultyOps struct {
	*soft.HSM
	fail    atomic.Pointer[error]
	imports atomic.Int32
}

// KeyOps is f itself: the soft HSM's own accessor would hand out the
// backend and bypass the failures.
func (f *faultyOps) KeyOps() (hsm.KeyOps, bool) { return f, true }

func (f *faultyOps) injected() error {
	if p := f.fail.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *faultyOps) ImportWrapped(ctx context.Context, dk uint32, w []byte, k hsm.KeyKind) (hsm.KeyHandle, error) {
	f.imports.Add(1)
	return f.HSM.ImportWrapped(ctx, dk, w, k)
}

func (f *faultyOps) EncryptGCM(ctx context.Context, kh hsm.KeyHandle, nonce, pt, aad []byte) ([]byte, error) {
	if err := f.injected(); err != nil {
		return nil, err
	}
	return f.HSM.EncryptGCM(ctx, kh, nonce, pt, aad)
}

func (f *faultyOps) DecryptGCM(ctx context.Context, kh hsm.KeyHandle, nonce, sealed, aad []byte) ([]byte, error) {
	if err := f.injected(); err != nil {
		return nil, err
	}
	return f.HSM.DecryptGCM(ctx, kh, nonce, sealed, aad)
}

func TestHSMLevelDeviceErrors(t *testing.T) {
	h := newLevelHarness(t, Config{}, ProtectionHSM)
	f := &faultyOps{HSM: h.hsm}
	s := h.otherNode("n-faulty", f)
	k := h.create("", "")
	e, err := s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
	must(t, err)
	inject := func(err error) { f.fail.Store(&err) }

	// A device failure is Unavailable for both directions, never an
	// InvalidCiphertext: the client must try another node.
	inject(hsm.ErrUnavailable)
	_, err = s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
	wantErr(t, err, ErrUnavailable, "")
	_, err = s.Decrypt(bg, DecryptInput{CiphertextBlob: e.CiphertextBlob})
	wantErr(t, err, ErrUnavailable, "")

	// A handle that stays invalid after the re-import is Unavailable too.
	inject(hsm.ErrHandleInvalid)
	before := f.imports.Load()
	_, err = s.Decrypt(bg, DecryptInput{CiphertextBlob: e.CiphertextBlob})
	wantErr(t, err, ErrUnavailable, "")
	if n := f.imports.Load() - before; n != 1 {
		t.Fatalf("%d re-imports for one operation, want exactly 1", n)
	}

	f.fail.Store(nil)
	d, err := s.Decrypt(bg, DecryptInput{CiphertextBlob: e.CiphertextBlob})
	must(t, err)
	if string(d.Plaintext) != "x" {
		t.Fatalf("decrypted %q", d.Plaintext)
	}
}

// The HSM-level symmetric format is plain AES-256-GCM: the documented
// layout decrypts with the standard library, the nonce is fresh and never
// empty, and a blob of the other level's format is InvalidCiphertext.
func TestHSMLevelCiphertextFormat(t *testing.T) {
	h := newLevelHarness(t, Config{}, ProtectionHSM)
	k := h.create("", "")
	ectx := map[string]string{"tenant": "acme"}
	pt := []byte("attack at dawn")
	a, err := h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionContext: ectx})
	must(t, err)
	b, err := h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionContext: ectx})
	must(t, err)
	hdr := 2 + 36 + 4 + 12
	blob := a.CiphertextBlob
	if blob[0] != 0x03 || int(blob[1]) != 36 || string(blob[2:38]) != k.KeyID || len(blob) != hdr+len(pt)+16 {
		t.Fatalf("blob %x", blob)
	}
	nonce := blob[hdr-12 : hdr]
	if bytes.Equal(nonce, make([]byte, 12)) || bytes.Equal(nonce, b.CiphertextBlob[hdr-12:hdr]) {
		t.Fatal("nonce is zero or repeated")
	}

	key, _ := h.fsm.Key(k.KeyID)
	raw, err := h.hsm.Unwrap(bg, key.GetVersions()[0].GetDomainKeyVersion(), key.GetVersions()[0].GetWrappedMaterial())
	must(t, err)
	blk, err := aes.NewCipher(raw)
	must(t, err)
	gcm, err := cipher.NewGCM(blk)
	must(t, err)
	aad, err := encodeContext(append([]byte(nil), blob[:hdr]...), ectx)
	must(t, err)
	got, err := gcm.Open(nil, nonce, blob[hdr:], aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("standard AES-GCM open: %q, %v", got, err)
	}

	// Formats do not cross levels.
	sw := newHarness(t, Config{})
	swKey := sw.create("", "")
	swBlob, err := sw.s.Encrypt(bg, EncryptInput{KeyID: swKey.KeyID, Plaintext: pt})
	must(t, err)
	x := bytes.Clone(swBlob.CiphertextBlob)
	copy(x[2:], k.KeyID)
	if _, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: x}); err != errInvalidCiphertext {
		t.Fatalf("an XAES blob naming an HSM-level key: %v", err)
	}
	x = bytes.Clone(blob)
	x[0] = formatSymmetric
	if _, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: x, EncryptionContext: ectx}); err != errInvalidCiphertext {
		t.Fatalf("an HSM-level blob relabelled 0x01: %v", err)
	}
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestHSMLevelNonceBudgetWarning(t *testing.T) {
	var logs lockedBuffer
	h := newLevelHarness(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, ProtectionHSM)
	h.s.gcmWarnAt, h.s.gcmWarnEvery = 3, 2
	k := h.create("", "")
	for i := 0; i < 6; i++ {
		_, err := h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
		must(t, err)
	}
	out := logs.String()
	if n := strings.Count(out, "nears the AES-GCM random-nonce limit"); n != 2 {
		t.Fatalf("%d warnings after 6 encryptions (warn at 3, every 2), want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "encryptions_on_this_node=5") || !strings.Contains(out, "key="+k.KeyID) {
		t.Fatalf("warning does not name the key and count:\n%s", out)
	}
}
