package identity

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewSourceLoads(t *testing.T) {
	ca := newCA(t, "ca")
	certPEM, keyPEM := ca.issue(t, nodeSpec("n1", "eu-west-1"))
	s, _ := newSource(t, certPEM, keyPEM, ca.pem)
	p, ok := s.Identity()
	if !ok || p.Kind != KindNode || p.Name != "n1" || p.Region != "eu-west-1" {
		t.Fatalf("Identity() = %v, %v", p, ok)
	}
	if got := s.TrustDomain().Name(); got != testTD {
		t.Errorf("TrustDomain() = %q, want %q (from the certificate)", got, testTD)
	}
	if want := leafOf(t, certPEM).NotAfter; !s.NotAfter().Equal(want) {
		t.Errorf("NotAfter() = %v, want %v", s.NotAfter(), want)
	}
	st := s.Stats()
	if st.Reloads != 0 || st.Failures != 0 || st.LastError != nil || !st.NotAfter.Equal(s.NotAfter()) || !st.BundleNotAfter.Equal(ca.cert.NotAfter) {
		t.Errorf("Stats() = %+v", st)
	}
}

// One file holding the chain and the key, the key in SEC 1 form: both
// common in the wild.
func TestNewSourceCombinedFileAndSEC1Key(t *testing.T) {
	ca := newCA(t, "ca")
	certPEM, keyPEM := ca.issue(t, nodeSpec("n1", ""))
	b, _ := pem.Decode(keyPEM)
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	combined := append(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), certPEM...)
	f := newFiles(t.TempDir())
	f.write(t, combined, nil, ca.pem)
	if _, err := NewSource(Config{CertFile: f.cert, KeyFile: f.cert, CAFile: f.ca}); err != nil {
		t.Fatalf("NewSource over one combined file: %v", err)
	}
}

// A Source with only a CA bundle is an anonymous dialer; it still needs a
// trust domain to recognise nodes by.
func TestNewSourceBundleOnly(t *testing.T) {
	plain := newCA(t, "plain")
	named := newCA(t, "named", "spiffe://"+testTD)
	other := newCA(t, "other", "spiffe://other.test")

	s, _ := newSource(t, nil, nil, named.pem)
	if s.TrustDomain().Name() != testTD {
		t.Errorf("trust domain from the CA's URI SAN = %q, want %q", s.TrustDomain().Name(), testTD)
	}
	if _, ok := s.Identity(); ok {
		t.Error("a bundle-only Source has an identity")
	}
	s, _ = newSource(t, nil, nil, plain.pem, func(c *Config) { c.TrustDomain = "spiffe://" + testTD })
	if s.TrustDomain().Name() != testTD {
		t.Errorf("configured trust domain = %q, want %q", s.TrustDomain().Name(), testTD)
	}

	for name, caPEM := range map[string][]byte{"no CA names one": plain.pem, "CAs disagree": bundle(named, other)} {
		f := newFiles(t.TempDir())
		f.write(t, nil, nil, caPEM)
		_, err := NewSource(Config{CAFile: f.ca})
		if !errors.Is(err, ErrLoad) || !strings.Contains(err.Error(), "trust domain unknown") {
			t.Errorf("%s: NewSource = %v, want trust domain unknown", name, err)
		}
	}
}

func TestNewSourceErrors(t *testing.T) {
	ca := newCA(t, "ca")
	otherCA := newCA(t, "other")
	certPEM, keyPEM := ca.issue(t, nodeSpec("n1", ""))
	_, otherKey := ca.issue(t, nodeSpec("n2", ""))
	expiredCert, expiredKey := ca.issue(t, nodeSpec("n1", "").expired())
	future := nodeSpec("n1", "")
	future.notBefore, future.notAfter = time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
	futureCert, futureKey := ca.issue(t, future)
	plainCert, plainKey := ca.issue(t, leafSpec{dns: []string{"node1.example"}})
	leafAsCA, _ := ca.issue(t, clientSpec("c"))
	oldCA := newCAValid(t, "old", time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	encKey := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})

	tests := []struct {
		name                 string
		cert, key, caPEM     []byte
		missing, dir         string // "cert", "key" or "ca": make that file missing / a directory
		wantFile, wantSubstr string
		wantIs               error
	}{
		{name: "missing certificate", missing: "cert", wantFile: "cert", wantSubstr: "missing"},
		{name: "missing key", missing: "key", wantFile: "key", wantSubstr: "missing"},
		{name: "missing bundle", missing: "ca", wantFile: "ca", wantSubstr: "missing"},
		{name: "unreadable certificate", dir: "cert", wantFile: "cert", wantSubstr: "unreadable"},
		{name: "no certificate in file", cert: keyPEM, wantFile: "cert", wantSubstr: "no certificate"},
		{name: "garbage certificate", cert: []byte("hello"), wantFile: "cert", wantSubstr: "no certificate"},
		{name: "corrupt certificate", cert: pemCert([]byte{0x30, 0x03, 1, 2, 3}), wantFile: "cert", wantSubstr: "certificate 1"},
		{name: "no key in file", key: certPEM, wantFile: "key", wantSubstr: "no private key"},
		{name: "encrypted key", key: encKey, wantFile: "key", wantSubstr: "encrypted"},
		{name: "corrupt key", key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0}}), wantFile: "key", wantSubstr: "cannot parse"},
		{name: "key does not match", key: otherKey, wantFile: "key", wantSubstr: "does not match"},
		{name: "expired certificate", cert: expiredCert, key: expiredKey, wantFile: "cert", wantSubstr: "expired at", wantIs: ErrExpired},
		{name: "not yet valid certificate", cert: futureCert, key: futureKey, wantFile: "cert", wantSubstr: "not yet valid: valid from", wantIs: ErrNotYetValid},
		{name: "certificate without SPIFFE ID", cert: plainCert, key: plainKey, wantFile: "cert", wantIs: ErrNoIdentity},
		{name: "empty bundle", caPEM: []byte{}, wantFile: "ca", wantSubstr: "no CA certificate"},
		{name: "leaf in bundle", caPEM: append(bundle(ca), leafAsCA...), wantFile: "ca", wantSubstr: "certificate 2 \"CN=leaf\" (serial"},
		{name: "key in bundle", caPEM: append(bundle(ca), keyPEM...), wantFile: "ca", wantSubstr: `PEM block 2 is "PRIVATE KEY"`},
		{name: "every CA expired", caPEM: bundle(oldCA), wantFile: "ca", wantSubstr: "no CA in the bundle is valid now: certificate 1: certificate \"CN=old\"", wantIs: ErrExpired},
		{name: "an expired CA beside a valid one", caPEM: bundle(oldCA, ca)}, // the overlap after a rotation
		{name: "other CA is fine to load", caPEM: bundle(otherCA)},           // trusting it is the operator's choice
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFiles(t.TempDir())
			f.write(t, or(tc.cert, certPEM), or(tc.key, keyPEM), or(tc.caPEM, ca.pem))
			path := map[string]string{"cert": f.cert, "key": f.key, "ca": f.ca}
			if tc.missing != "" {
				os.Remove(path[tc.missing])
			}
			if tc.dir != "" {
				os.Remove(path[tc.dir])
				os.Mkdir(path[tc.dir], 0o700)
			}
			_, err := NewSource(Config{CertFile: f.cert, KeyFile: f.key, CAFile: f.ca})
			if tc.wantFile == "" {
				if err != nil {
					t.Fatalf("NewSource: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("NewSource succeeded")
			}
			t.Log(err)
			if !errors.Is(err, ErrLoad) {
				t.Errorf("error does not wrap ErrLoad")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error does not wrap %v", tc.wantIs)
			}
			if !strings.Contains(err.Error(), path[tc.wantFile]) {
				t.Errorf("error does not name %s", path[tc.wantFile])
			}
			if !strings.Contains(err.Error(), tc.wantSubstr) {
				t.Errorf("error does not say %q", tc.wantSubstr)
			}
			assertNoKeyMaterial(t, err.Error(), keyPEM, otherKey)
		})
	}
}

func or(b, def []byte) []byte {
	if b != nil {
		return b
	}
	return def
}

// assertNoKeyMaterial fails if s quotes any private key, in PEM, base64 or
// hex form, even a fragment of it.
func assertNoKeyMaterial(t *testing.T, s string, keys ...[]byte) {
	t.Helper()
	for _, k := range keys {
		b, _ := pem.Decode(k)
		b64 := base64.StdEncoding.EncodeToString(b.Bytes)
		hx := hex.EncodeToString(b.Bytes)
		for i := 0; i+16 <= len(b64); i += 8 {
			if strings.Contains(s, b64[i:i+16]) {
				t.Fatalf("%q quotes the private key (base64)", s)
			}
		}
		for i := 0; i+16 <= len(hx); i += 8 {
			if strings.Contains(s, hx[i:i+16]) {
				t.Fatalf("%q quotes the private key (hex)", s)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"bundle only", Config{CAFile: "ca"}, true},
		{"all files", Config{CertFile: "c", KeyFile: "k", CAFile: "ca"}, true},
		{"no bundle", Config{CertFile: "c", KeyFile: "k"}, false},
		{"cert without key", Config{CertFile: "c", CAFile: "ca"}, false},
		{"key without cert", Config{KeyFile: "k", CAFile: "ca"}, false},
		{"bad trust domain", Config{CAFile: "ca", TrustDomain: "Bad Domain"}, false},
		{"negative debounce", Config{CAFile: "ca", WatchDebounce: -1}, false},
		{"negative retry", Config{CAFile: "ca", MaxRetryInterval: -1}, false},
	}
	for _, tc := range tests {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
	// Validate runs before any file is read.
	if _, err := NewSource(Config{CertFile: filepath.Join(t.TempDir(), "c")}); err == nil {
		t.Error("NewSource accepted an invalid config")
	}
}
