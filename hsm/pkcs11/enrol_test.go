package pkcs11_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	pk "github.com/miekg/pkcs11"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/hsmtest"
	"github.com/meridiankms/meridian/hsm/pkcs11"
	"github.com/meridiankms/meridian/hsm/pkcs11/softhsmtest"
	"github.com/meridiankms/meridian/hsm/soft"
)

// newSoft makes a soft HSM in a temp dir: a member (holding DK v1) or a
// joiner (holding none). Weak argon2id parameters keep it fast.
func newSoft(t *testing.T, member bool) *soft.HSM {
	t.Helper()
	cfg := soft.Config{
		Path:       filepath.Join(t.TempDir(), "dk.sealed"),
		Passphrase: []byte("enrol-test-passphrase"),
		KDF:        soft.KDFParams{Time: 1, MemoryKiB: soft.MinKDFMemoryKiB, Threads: 1},
	}
	create := soft.CreateEmpty
	if member {
		create = soft.Create
	}
	h, err := create(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func pkcs11Member(t *testing.T) hsm.HSM { return withDK(t, 0) }
func pkcs11Joiner(t *testing.T) hsm.HSM { return mustOpen(t, newConfig(t, "joiner")) }
func softMember(t *testing.T) hsm.HSM   { return newSoft(t, true) }
func softJoiner(t *testing.T) hsm.HSM   { return newSoft(t, false) }

// Two SoftHSM tokens, and each direction between SoftHSM and the soft
// backend: a soft cluster can take a PKCS#11 node and back.
func TestEnrolContract(t *testing.T) {
	t.Run("pkcs11-to-pkcs11", func(t *testing.T) { hsmtest.RunEnrolContract(t, pkcs11Member, pkcs11Joiner) })
	t.Run("soft-to-pkcs11", func(t *testing.T) { hsmtest.RunEnrolContract(t, softMember, pkcs11Joiner) })
	t.Run("pkcs11-to-soft", func(t *testing.T) { hsmtest.RunEnrolContract(t, pkcs11Member, softJoiner) })
}

// enrol runs one whole enrolment and returns how long it took, and how
// much of that the transport key pair's generation took.
func enrol(t *testing.T, member, joiner hsm.Enroller) (total, keygen time.Duration) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	pub, err := joiner.TransportPublicKey(ctx)
	if err != nil {
		t.Fatalf("TransportPublicKey: %v", err)
	}
	keygen = time.Since(start)
	b, err := member.ExportDomainKeys(ctx, pub)
	if err != nil {
		t.Fatalf("ExportDomainKeys: %v", err)
	}
	if err := joiner.ImportDomainKeys(ctx, b); err != nil {
		t.Fatalf("ImportDomainKeys: %v", err)
	}
	return time.Since(start), keygen
}

// An imported DK carries the same policy as a generated one, and it is a
// token object: a restarted joiner still holds it.
func TestImportedDomainKeyPolicyAndRestart(t *testing.T) {
	ctx := context.Background()
	member := withDK(t, 1)
	blob, err := member.Wrap(ctx, 2, []byte("wrapped by the member before enrolment"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := newConfig(t, "joiner")
	joiner := mustOpen(t, cfg)
	total, keygen := enrol(t, member, joiner)
	t.Logf("SoftHSM to SoftHSM enrolment of 2 DK versions: %v (transport keygen %v)", total, keygen)
	want, err := member.DomainKeyPolicy(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := joiner.DomainKeyPolicy(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got.Sensitive != want.Sensitive || got.Extractable != want.Extractable || got.WrapWithTrusted != want.WrapWithTrusted ||
		got.Wrap != want.Wrap || got.Unwrap != want.Unwrap || got.Encrypt || got.Decrypt || !got.Token {
		t.Fatalf("imported DK attributes %+v, generated %+v", got, want)
	}
	var e pk.Error
	if !errors.As(got.ValueErr, &e) || e != pk.CKR_ATTRIBUTE_SENSITIVE {
		t.Fatalf("reading the imported DK's value: %v, want CKR_ATTRIBUTE_SENSITIVE", got.ValueErr)
	}
	if err := joiner.Close(); err != nil {
		t.Fatal(err)
	}
	again := mustOpen(t, cfg)
	if vs, err := again.DomainKeyVersions(ctx); err != nil || !slices.Equal(vs, []uint32{1, 2}) {
		t.Fatalf("restarted joiner holds %v, %v", vs, err)
	}
	if pt, err := again.Unwrap(ctx, 2, blob); err != nil || string(pt) != "wrapped by the member before enrolment" {
		t.Fatalf("restarted joiner Unwrap: %v", err)
	}
}

// The transport pair is made inside the token: session objects, the
// private half sensitive, non-extractable and good only for unwrapping.
// A device error between TransportPublicKey and the import ends the pair
// (its session objects went with the sessions): the import says so with
// ErrUnwrap, and TransportPublicKey makes a new pair.
func TestTransportPair(t *testing.T) {
	ctx := context.Background()
	member := withDK(t, 0)
	joiner, f := openFaulty(t, 4)
	if _, err := joiner.TransportKeyAttributes(ctx); !errors.Is(err, hsm.ErrUnwrap) {
		t.Fatalf("attributes with no pair: %v", err)
	}
	pub, err := joiner.TransportPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k, err := hsm.ParseTransportPublicKey(pub)
	if err != nil || k.N.BitLen() != 3072 {
		t.Fatalf("transport public key: %v", err)
	}
	a, err := joiner.TransportKeyAttributes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.PrivToken || !a.PrivSensitive || a.PrivExtractable || !a.PrivUnwrap || a.PrivDecrypt || a.PrivSign || a.PubToken || !a.PubWrap {
		t.Fatalf("transport key attributes %+v", a)
	}
	var e pk.Error
	if !errors.As(a.PrivValueErr, &e) || e != pk.CKR_ATTRIBUTE_SENSITIVE {
		t.Fatalf("reading the private exponent: %v, want CKR_ATTRIBUTE_SENSITIVE", a.PrivValueErr)
	}
	b, err := member.ExportDomainKeys(ctx, pub)
	if err != nil {
		t.Fatal(err)
	}
	f.failNext.Store(uint64(pk.CKR_DEVICE_ERROR))
	if _, err := joiner.Random(ctx, 8); !errors.Is(err, hsm.ErrUnavailable) {
		t.Fatalf("Random on a failing device: %v", err)
	}
	if err := joiner.Health(ctx); err != nil {
		t.Fatalf("Health after recovery: %v", err)
	}
	// openFaulty's token holds its own DK v1, so the member's v1 is
	// "held": use a bundle entry the joiner lacks.
	b.Versions[0].Version = 7
	if err := joiner.ImportDomainKeys(ctx, b); !errors.Is(err, hsm.ErrUnwrap) {
		t.Fatalf("import after reconnect: %v, want ErrUnwrap", err)
	}
	pub2, err := joiner.TransportPublicKey(ctx)
	if err != nil || bytes.Equal(pub2, pub) {
		t.Fatalf("new pair after reconnect: same key or %v", err)
	}
	if err := joiner.Health(ctx); err != nil {
		t.Fatalf("Health: %v", err)
	}
}

// With RequireTrustedWrap, a DK goes only to a transport key the SO has
// marked trusted: the node's user PIN alone cannot send it anywhere.
func TestRequireTrustedWrap(t *testing.T) {
	ctx := context.Background()
	mcfg := newConfig(t, "trusted-member")
	mcfg.RequireTrustedWrap = true
	member := mustOpen(t, mcfg)
	if _, err := member.InitDomainKey(ctx); err != nil {
		t.Fatal(err)
	}
	blob, err := member.Wrap(ctx, 1, []byte("material under a trusted-only DK"))
	if err != nil {
		t.Fatal(err)
	}
	jcfg := newConfig(t, "trusted-joiner")
	jcfg.RequireTrustedWrap = true
	joiner := mustOpen(t, jcfg)
	pub, err := joiner.TransportPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := member.ExportDomainKeys(ctx, pub); !errors.Is(err, pkcs11.ErrTransportKeyNotTrusted) {
		t.Fatalf("export to an untrusted key: %v, want ErrTransportKeyNotTrusted", err)
	}
	module := softhsmtest.Module()
	if err := pkcs11.TrustTransportKey(ctx, module, mcfg.TokenLabel, softhsmtest.SOPIN, pub); !errors.Is(err, pkcs11.ErrTokenInUse) {
		t.Fatalf("trust while the node has the token open: %v, want ErrTokenInUse", err)
	}
	if err := member.Close(); err != nil {
		t.Fatal(err)
	}
	err = pkcs11.TrustTransportKey(ctx, module, mcfg.TokenLabel, "wrong-so-pin", pub)
	if !errors.Is(err, pkcs11.ErrWrongPIN) || bytes.Contains([]byte(err.Error()), []byte("wrong-so-pin")) {
		t.Fatalf("wrong SO PIN: %v", err)
	}
	for range 2 { // the second time finds the object and is a no-op
		if err := pkcs11.TrustTransportKey(ctx, module, mcfg.TokenLabel, softhsmtest.SOPIN, pub); err != nil {
			t.Fatalf("TrustTransportKey: %v", err)
		}
	}
	member = mustOpen(t, mcfg)
	enrol(t, member, joiner)
	if pt, err := joiner.Unwrap(ctx, 1, blob); err != nil || string(pt) != "material under a trusted-only DK" {
		t.Fatalf("joiner Unwrap: %v", err)
	}
	p, err := joiner.DomainKeyPolicy(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var e pk.Error
	if !p.WrapWithTrusted || !errors.As(p.UntrustedWrapErr, &e) || e != pk.CKR_KEY_NOT_WRAPPABLE {
		t.Fatalf("imported DK under RequireTrustedWrap: trusted-only %v, untrusted wrap %v", p.WrapWithTrusted, p.UntrustedWrapErr)
	}
}
