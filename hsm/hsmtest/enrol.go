package hsmtest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/keywrap"
)

// RunEnrolContract checks hsm.Enroller between two backends: newMember
// returns an HSM holding at least one DK version, newJoiner one holding
// none (a node awaiting enrolment). Both must have the Enroller
// capability, and the member DomainKeyRotator as well: it checks that a
// node enrolled earlier can catch up with a later DK version, which a
// member that cannot rotate would leave unchecked. They
// may be different backends: soft to PKCS#11 and back must interoperate.
// Each subtest gets its own HSMs, closed when it ends. A joiner's
// transport key pair costs a second or so to make, so the subtests are
// few and each does several checks on one joiner.
func RunEnrolContract(t *testing.T, newMember, newJoiner func(t *testing.T) hsm.HSM) {
	t.Helper()
	get := func(t *testing.T, mk func(t *testing.T) hsm.HSM) (hsm.HSM, hsm.Enroller) {
		t.Helper()
		h := mk(t)
		if h == nil {
			t.Fatal("factory returned a nil HSM")
		}
		t.Cleanup(func() {
			if err := h.Close(); err != nil && !errors.Is(err, hsm.ErrClosed) {
				t.Errorf("Close: %v", err)
			}
		})
		e, ok := h.Enroller()
		if !ok || e == nil {
			t.Fatalf("%T has no Enroller capability", h)
		}
		return h, e
	}
	t.Run("NotEnrolled", func(t *testing.T) {
		j, je := get(t, newJoiner)
		testNotEnrolled(t, j, je)
	})
	t.Run("InvalidInput", func(t *testing.T) {
		m, me := get(t, newMember)
		testEnrolInvalidInput(t, m, me)
	})
	t.Run("Enrol", func(t *testing.T) {
		m, me := get(t, newMember)
		j, je := get(t, newJoiner)
		testEnrol(t, m, me, j, je)
	})
	t.Run("Closed", func(t *testing.T) {
		m, me := get(t, newMember)
		testEnrolClosed(t, m, me)
	})
}

// foreign is an RSA-3072 key pair no HSM holds: "another node's"
// transport key. Made once per process (it takes about a second).
var foreign = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, hsm.MinTransportKeyBits)
})

func foreignPub(t *testing.T) []byte {
	t.Helper()
	k, err := foreign()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func testNotEnrolled(t *testing.T, j hsm.HSM, je hsm.Enroller) {
	ctx := context.Background()
	if vs, err := j.DomainKeyVersions(ctx); err != nil || len(vs) != 0 {
		t.Fatalf("DomainKeyVersions = %v, %v; want none", vs, err)
	}
	if err := j.Health(ctx); !errors.Is(err, hsm.ErrNoDomainKey) {
		t.Fatalf("Health = %v, want hsm.ErrNoDomainKey", err)
	}
	if _, err := j.CurrentDomainKeyVersion(ctx); !errors.Is(err, hsm.ErrNoDomainKey) {
		t.Fatalf("CurrentDomainKeyVersion err = %v, want hsm.ErrNoDomainKey", err)
	}
	if _, err := j.Wrap(ctx, 1, make([]byte, 32)); !errors.Is(err, hsm.ErrNoDomainKey) {
		t.Fatalf("Wrap err = %v, want hsm.ErrNoDomainKey", err)
	}
	if _, err := j.Unwrap(ctx, 1, make([]byte, 40)); !errors.Is(err, hsm.ErrNoDomainKey) {
		t.Fatalf("Unwrap err = %v, want hsm.ErrNoDomainKey", err)
	}
	if _, err := je.ExportDomainKeys(ctx, foreignPub(t)); !errors.Is(err, hsm.ErrNoDomainKey) {
		t.Fatalf("ExportDomainKeys with no DK: err = %v, want hsm.ErrNoDomainKey", err)
	}
	// Importing before asking for a transport key cannot succeed.
	b := &hsm.DomainKeyBundle{Versions: []hsm.WrappedDomainKey{{Version: 1, Wrapped: make([]byte, 384)}}}
	if err := je.ImportDomainKeys(ctx, b); !errors.Is(err, hsm.ErrUnwrap) {
		t.Fatalf("ImportDomainKeys with no transport key: err = %v, want hsm.ErrUnwrap", err)
	}
	if _, err := j.Random(ctx, 16); err != nil {
		t.Fatalf("Random needs no DK: %v", err)
	}
}

func testEnrolInvalidInput(t *testing.T, m hsm.HSM, me hsm.Enroller) {
	ctx := context.Background()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallDER, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	good := foreignPub(t)
	for name, pub := range map[string][]byte{
		"nil":       nil,
		"garbage":   []byte("not a key"),
		"truncated": good[:len(good)-1],
		"RSA-1024":  smallDER,
		"EC P-256":  ecDER,
	} {
		if _, err := me.ExportDomainKeys(ctx, pub); !errors.Is(err, hsm.ErrInvalidInput) {
			t.Errorf("ExportDomainKeys(%s): err = %v, want hsm.ErrInvalidInput", name, err)
		}
	}
	for name, b := range map[string]*hsm.DomainKeyBundle{
		"nil":       nil,
		"empty":     {},
		"version 0": {Versions: []hsm.WrappedDomainKey{{Version: 0, Wrapped: make([]byte, 384)}}},
	} {
		if err := me.ImportDomainKeys(ctx, b); !errors.Is(err, hsm.ErrInvalidInput) {
			t.Errorf("ImportDomainKeys(%s): err = %v, want hsm.ErrInvalidInput", name, err)
		}
	}
	if err := m.Health(ctx); err != nil {
		t.Fatalf("Health after invalid input: %v", err)
	}
}

// sample is material wrapped by the member before enrolment.
type sample struct {
	v              uint32
	material, blob []byte
}

func testEnrol(t *testing.T, m hsm.HSM, me hsm.Enroller, j hsm.HSM, je hsm.Enroller) {
	ctx := context.Background()
	r, ok := m.DomainKeyRotator()
	if !ok || r == nil {
		t.Fatalf("member %T has no DomainKeyRotator: enrolment catch-up cannot be checked", m)
	}
	if _, err := r.RotateDomainKey(ctx); err != nil {
		t.Fatalf("member RotateDomainKey: %v", err)
	}
	mvs := versions(t, m)
	var samples []sample
	for _, v := range mvs {
		for _, n := range []int{32, 138} {
			mat := random(t, m, n)
			samples = append(samples, sample{v, mat, wrap(t, m, v, mat)})
		}
	}

	pub, err := je.TransportPublicKey(ctx)
	if err != nil {
		t.Fatalf("TransportPublicKey: %v", err)
	}
	if again, err := je.TransportPublicKey(ctx); err != nil || !bytes.Equal(again, pub) {
		t.Fatalf("second TransportPublicKey differs (err %v): one pair per enrolment", err)
	}
	if _, err := hsm.ParseTransportPublicKey(pub); err != nil {
		t.Fatalf("transport public key: %v", err)
	}

	// A bundle made for another transport key, or altered, changes nothing.
	foreignBundle, err := me.ExportDomainKeys(ctx, foreignPub(t))
	if err != nil {
		t.Fatalf("ExportDomainKeys(foreign key): %v", err)
	}
	expectImportFails(t, j, je, foreignBundle, "bundle for another transport key")
	bundle, err := me.ExportDomainKeys(ctx, pub)
	if err != nil {
		t.Fatalf("ExportDomainKeys: %v", err)
	}
	var got []uint32
	for _, w := range bundle.Versions {
		got = append(got, w.Version)
	}
	if !slices.Equal(got, mvs) {
		t.Fatalf("bundle carries versions %v, member holds %v", got, mvs)
	}
	flipped := cloneBundle(bundle)
	last := flipped.Versions[len(flipped.Versions)-1].Wrapped
	last[len(last)/2] ^= 1
	expectImportFails(t, j, je, flipped, "bundle with a flipped bit")

	// The bundle travels in its wire encoding; neither it nor the public
	// key holds a DK in the clear.
	wire, err := bundle.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	for _, s := range samples {
		assertNoKeyFor(t, wire, s, "bundle bytes")
		assertNoKeyFor(t, pub, s, "transport public key")
	}
	var received hsm.DomainKeyBundle
	if err := received.UnmarshalBinary(wire); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	if err := je.ImportDomainKeys(ctx, &received); err != nil {
		t.Fatalf("ImportDomainKeys: %v", err)
	}
	checkEnrolled(t, m, j, samples)
	// Importing again is a no-op, even though the transport key is used up.
	if err := je.ImportDomainKeys(ctx, &received); err != nil {
		t.Fatalf("second ImportDomainKeys: %v", err)
	}
	checkEnrolled(t, m, j, samples)

	// A later DK version reaches an enrolled node through a new pair: the
	// old one is gone once an import succeeds.
	nv, err := r.RotateDomainKey(ctx)
	if err != nil {
		t.Fatalf("member RotateDomainKey: %v", err)
	}
	mat := random(t, m, 64)
	samples = append(samples, sample{nv, mat, wrap(t, m, nv, mat)})
	stale, err := me.ExportDomainKeys(ctx, pub)
	if err != nil {
		t.Fatalf("ExportDomainKeys to the used key: %v", err)
	}
	if err := je.ImportDomainKeys(ctx, stale); !errors.Is(err, hsm.ErrUnwrap) {
		t.Fatalf("import to a used-up transport key: err = %v, want hsm.ErrUnwrap", err)
	}
	pub2, err := je.TransportPublicKey(ctx)
	if err != nil {
		t.Fatalf("TransportPublicKey after import: %v", err)
	}
	if bytes.Equal(pub2, pub) {
		t.Fatal("TransportPublicKey after a successful import returned the used pair")
	}
	fresh, err := me.ExportDomainKeys(ctx, pub2)
	if err != nil {
		t.Fatalf("ExportDomainKeys: %v", err)
	}
	if err := je.ImportDomainKeys(ctx, fresh); err != nil {
		t.Fatalf("ImportDomainKeys of the rotated set: %v", err)
	}
	checkEnrolled(t, m, j, samples)
}

func expectImportFails(t *testing.T, j hsm.HSM, je hsm.Enroller, b *hsm.DomainKeyBundle, what string) {
	t.Helper()
	ctx := context.Background()
	if err := je.ImportDomainKeys(ctx, b); !errors.Is(err, hsm.ErrUnwrap) {
		t.Fatalf("%s: ImportDomainKeys err = %v, want hsm.ErrUnwrap", what, err)
	}
	if vs, err := j.DomainKeyVersions(ctx); err != nil || len(vs) != 0 {
		t.Fatalf("%s: a failed import left versions %v (err %v)", what, vs, err)
	}
	if err := j.Health(ctx); !errors.Is(err, hsm.ErrNoDomainKey) {
		t.Fatalf("%s: Health after a failed import = %v, want hsm.ErrNoDomainKey", what, err)
	}
}

// checkEnrolled: the joiner holds the member's versions, opens the
// member's blobs, and the member opens the joiner's.
func checkEnrolled(t *testing.T, m, j hsm.HSM, samples []sample) {
	t.Helper()
	ctx := context.Background()
	mvs := versions(t, m)
	if jvs := versions(t, j); !slices.Equal(jvs, mvs) {
		t.Fatalf("joiner holds DK versions %v, member %v", jvs, mvs)
	}
	mc, _ := m.CurrentDomainKeyVersion(ctx)
	if jc, err := j.CurrentDomainKeyVersion(ctx); err != nil || jc != mc {
		t.Fatalf("joiner's current DK version %d (err %v), member's %d", jc, err, mc)
	}
	if err := j.Health(ctx); err != nil {
		t.Fatalf("joiner Health after enrolment: %v", err)
	}
	for _, s := range samples {
		if got := unwrap(t, j, s.v, s.blob); !bytes.Equal(got, s.material) {
			t.Fatalf("joiner unwraps the member's dk v%d blob to different bytes", s.v)
		}
		back := wrap(t, j, s.v, s.material)
		if got := unwrap(t, m, s.v, back); !bytes.Equal(got, s.material) {
			t.Fatalf("member unwraps the joiner's dk v%d blob to different bytes", s.v)
		}
	}
}

// assertNoKeyFor fails if any 32-byte window of data is the DK that made
// s.blob: a DK that leaked in the clear anywhere in data would open the
// blob. It needs no access to the DK, so it works for every backend.
func assertNoKeyFor(t *testing.T, data []byte, s sample, what string) {
	t.Helper()
	for i := 0; i+32 <= len(data); i++ {
		b, err := aes.NewCipher(data[i : i+32])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keywrap.Unwrap(b, s.blob); err == nil {
			t.Fatalf("%s: bytes %d..%d are dk v%d in the clear", what, i, i+32, s.v)
		}
	}
}

func cloneBundle(b *hsm.DomainKeyBundle) *hsm.DomainKeyBundle {
	c := &hsm.DomainKeyBundle{}
	for _, w := range b.Versions {
		c.Versions = append(c.Versions, hsm.WrappedDomainKey{Version: w.Version, Wrapped: bytes.Clone(w.Wrapped)})
	}
	return c
}

func testEnrolClosed(t *testing.T, m hsm.HSM, me hsm.Enroller) {
	ctx := context.Background()
	pub := foreignPub(t)
	b, err := me.ExportDomainKeys(ctx, pub)
	if err != nil {
		t.Fatalf("ExportDomainKeys: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := me.TransportPublicKey(ctx); !errors.Is(err, hsm.ErrClosed) {
		t.Errorf("TransportPublicKey after Close: err = %v, want hsm.ErrClosed", err)
	}
	if _, err := me.ExportDomainKeys(ctx, pub); !errors.Is(err, hsm.ErrClosed) {
		t.Errorf("ExportDomainKeys after Close: err = %v, want hsm.ErrClosed", err)
	}
	if err := me.ImportDomainKeys(ctx, b); !errors.Is(err, hsm.ErrClosed) {
		t.Errorf("ImportDomainKeys after Close: err = %v, want hsm.ErrClosed", err)
	}
}
