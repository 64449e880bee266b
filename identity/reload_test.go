package identity

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meridiankms/meridian/internal/testwait"
)

// serial is the serial of the certificate the server presented to one
// fresh connection; a handshake error is returned.
func serial(t *testing.T, srv, cli *tls.Config) (string, error) {
	t.Helper()
	o := handshake(t, srv, cli)
	if o.clientErr != nil || o.serverErr != nil {
		return "", fmt.Errorf("client %v, server %v", o.clientErr, o.serverErr)
	}
	return o.served.SerialNumber.String(), nil
}

func serialOf(t *testing.T, certPEM []byte) string {
	return leafOf(t, certPEM).SerialNumber.String()
}

// wantServed polls until new connections are shown the certificate
// certPEM: reloads are asynchronous for Watch and ReloadOn.
func wantServed(t *testing.T, srv, cli *tls.Config, certPEM []byte) {
	t.Helper()
	want := serialOf(t, certPEM)
	testwait.Eventually(t, 10*time.Second, "certificate serial "+want, func() error {
		got, err := serial(t, srv, cli)
		if err == nil && got != want {
			err = fmt.Errorf("serial %s", got)
		}
		return err
	})
}

// pair is a server and a peer node dialing it on the cluster plane, each
// from its own files.
type pair struct {
	ca       *testCA
	server   *Source
	files    files
	srv, cli *tls.Config
	first    []byte // the server's first certificate
}

func newPair(t *testing.T, mods ...func(*Config)) *pair {
	t.Helper()
	ca := newCA(t, "ca")
	certPEM, keyPEM := ca.issue(t, nodeSpec("n1", ""))
	server, f := newSource(t, certPEM, keyPEM, ca.pem, mods...)
	peerCert, peerKey := ca.issue(t, nodeSpec("n2", ""))
	peer, _ := newSource(t, peerCert, peerKey, ca.pem)
	p := &pair{ca: ca, server: server, files: f, first: certPEM,
		srv: mustServerConfig(t, server, ClusterPlane),
		cli: mustClientConfig(t, peer, ClientPolicy{Plane: ClusterPlane, NodeID: "n1"})}
	wantServed(t, p.srv, p.cli, certPEM)
	return p
}

// run starts f (Watch or ReloadOn) and stops it when the test ends, checking
// that it returns nil once its context is cancelled.
func run(t *testing.T, f func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var err error
	wg.Go(func() { err = f(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if err != nil {
			t.Errorf("returned %v after its context ended, want nil", err)
		}
	})
}

func TestReload(t *testing.T) {
	p := newPair(t)
	certPEM, keyPEM := p.ca.issue(t, nodeSpec("n1", ""))
	p.files.write(t, certPEM, keyPEM, nil)
	// Files changed, nothing reloaded yet: still the old certificate.
	wantServed(t, p.srv, p.cli, p.first)

	if err := p.server.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	wantServed(t, p.srv, p.cli, certPEM)
	if st := p.server.Stats(); st.Reloads != 1 || st.Failures != 0 || st.LastError != nil || !st.NotAfter.Equal(leafOf(t, certPEM).NotAfter) {
		t.Errorf("Stats() = %+v", st)
	}
}

// A dialer's reload applies to its next handshake too: the server sees the
// new identity.
func TestReloadClientCertificate(t *testing.T) {
	ca := newCA(t, "ca")
	srvCert, srvKey := ca.issue(t, nodeSpec("n1", ""))
	server, _ := newSource(t, srvCert, srvKey, ca.pem)
	c1, k1 := ca.issue(t, clientSpec("before"))
	client, f := newSource(t, c1, k1, ca.pem)
	srv, cli := mustServerConfig(t, server, ClientAPI), mustClientConfig(t, client, ClientPolicy{Plane: ClientAPI})
	if o := handshake(t, srv, cli); o.peer.Name != "before" {
		t.Fatalf("peer = %v (%v, %v)", o.peer, o.serverErr, o.clientErr)
	}
	c2, k2 := ca.issue(t, clientSpec("after"))
	f.write(t, c2, k2, nil)
	if err := client.Reload(); err != nil {
		t.Fatal(err)
	}
	if o := handshake(t, srv, cli); o.peer.Name != "after" {
		t.Fatalf("peer after reload = %v (%v, %v)", o.peer, o.serverErr, o.clientErr)
	}
}

func TestFailedReloadKeepsMaterial(t *testing.T) {
	p := newPair(t)
	certPEM, keyPEM := p.ca.issue(t, nodeSpec("n1", ""))
	_, strayKey := p.ca.issue(t, nodeSpec("n1", ""))
	foreignCert, foreignKey := p.ca.issue(t, leafSpec{uris: []string{"spiffe://other.test/node/n1"}})

	steps := []struct {
		name             string
		cert, key, caPEM []byte
		says             string
	}{
		{name: "key does not match", cert: certPEM, key: strayKey, says: p.files.key + " does not match the certificate in " + p.files.cert},
		{name: "bundle garbage", key: keyPEM, caPEM: []byte("not a bundle"), says: p.files.ca + ": no CA certificate"},
		{name: "trust domain change", cert: foreignCert, key: foreignKey, caPEM: p.ca.pem, says: "trust domain other.test differs from meridian.test"},
		{name: "certificate missing", says: p.files.cert + ": missing"},
	}
	for i, st := range steps {
		p.files.write(t, st.cert, st.key, st.caPEM)
		if st.cert == nil && st.key == nil && st.caPEM == nil {
			os.Remove(p.files.cert)
		}
		err := p.server.Reload()
		if !errors.Is(err, ErrLoad) || !strings.Contains(err.Error(), st.says) {
			t.Fatalf("%s: Reload = %v, want it to say %q", st.name, err, st.says)
		}
		assertNoKeyMaterial(t, err.Error(), keyPEM, strayKey, foreignKey)
		// The previous material still serves, whole.
		wantServed(t, p.srv, p.cli, p.first)
		if s := p.server.Stats(); s.Failures != uint64(i+1) || s.Reloads != 0 || !errors.Is(s.LastError, err) {
			t.Fatalf("%s: Stats() = %+v", st.name, s)
		}
		if id, _ := p.server.Identity(); id.TrustDomain().Name() != testTD {
			t.Fatalf("%s: identity became %v", st.name, id)
		}
	}

	p.files.write(t, certPEM, keyPEM, p.ca.pem)
	if err := p.server.Reload(); err != nil {
		t.Fatalf("Reload after repair: %v", err)
	}
	wantServed(t, p.srv, p.cli, certPEM)
	if s := p.server.Stats(); s.LastError != nil || s.Reloads != 1 {
		t.Fatalf("Stats() after repair = %+v", s)
	}
}

func fastWatch(c *Config) {
	c.WatchDebounce = 20 * time.Millisecond
	c.MaxRetryInterval = 200 * time.Millisecond
}

func TestWatchAtomicRename(t *testing.T) {
	p := newPair(t, fastWatch)
	run(t, p.server.Watch)
	for range 2 { // twice: the watch survives its own reload
		certPEM, keyPEM := p.ca.issue(t, nodeSpec("n1", ""))
		p.files.write(t, certPEM, keyPEM, nil)
		wantServed(t, p.srv, p.cli, certPEM)
	}
	if st := p.server.Stats(); st.Reloads != 2 {
		// Each pair of renames is one change of content; the debounce and
		// the digest keep the count to one reload per pair (a reload may
		// land between the two renames only if the key matched, which it
		// cannot here).
		t.Errorf("Reloads = %d, want 2", st.Reloads)
	}
}

// A Kubernetes secret volume: the files are symlinks through ..data, and
// an update swaps ..data to a new directory in one rename.
func TestWatchKubernetesSecret(t *testing.T) {
	ca := newCA(t, "ca")
	certPEM, keyPEM := ca.issue(t, nodeSpec("n1", ""))
	dir := t.TempDir()
	version := func(name string, certPEM, keyPEM []byte) {
		d := filepath.Join(dir, name)
		must(t, os.Mkdir(d, 0o755))
		must(t, os.WriteFile(filepath.Join(d, "tls.crt"), certPEM, 0o600))
		must(t, os.WriteFile(filepath.Join(d, "tls.key"), keyPEM, 0o600))
		must(t, os.WriteFile(filepath.Join(d, "ca.crt"), ca.pem, 0o600))
		must(t, os.Symlink(name, filepath.Join(dir, "..data_tmp")))
		must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	}
	version("..2025_01", certPEM, keyPEM)
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		must(t, os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)))
	}
	cfg := Config{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), CAFile: filepath.Join(dir, "ca.crt"), Logger: testLogger(t)}
	fastWatch(&cfg)
	server, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	peerCert, peerKey := ca.issue(t, nodeSpec("n2", ""))
	peer, _ := newSource(t, peerCert, peerKey, ca.pem)
	srv, cli := mustServerConfig(t, server, ClusterPlane), mustClientConfig(t, peer, ClientPolicy{Plane: ClusterPlane})
	run(t, server.Watch)

	newCert, newKey := ca.issue(t, nodeSpec("n1", ""))
	version("..2025_02", newCert, newKey)
	must(t, os.RemoveAll(filepath.Join(dir, "..2025_01")))
	wantServed(t, srv, cli, newCert)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The certificate lands first and its key a while later: the reload the
// certificate's event causes fails, the old pair serves meanwhile, and the
// key's event brings the new pair in.
func TestWatchCertificateThenKey(t *testing.T) {
	p := newPair(t, fastWatch)
	run(t, p.server.Watch)
	certPEM, keyPEM := p.ca.issue(t, nodeSpec("n1", ""))
	p.files.write(t, certPEM, nil, nil)
	testwait.Eventually(t, 10*time.Second, "a failed reload", func() bool { return p.server.Stats().Failures > 0 })
	wantServed(t, p.srv, p.cli, p.first)
	p.files.write(t, nil, keyPEM, nil)
	wantServed(t, p.srv, p.cli, certPEM)
	testwait.Eventually(t, 10*time.Second, "LastError cleared", func() error { return p.server.Stats().LastError })
}

// A certificate issued a moment in the future (the issuer's clock ahead of
// ours) fails to load, and no further file event will come: the watch's
// retry alone must pick it up once it is valid. The Source's clock is a
// fake one, so that "once" does not depend on how busy the machine is.
func TestWatchRetriesFailedReload(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	ca := newCA(t, "ca")
	certPEM, keyPEM := ca.issue(t, nodeSpec("n1", ""))
	s, f := newSource(t, certPEM, keyPEM, ca.pem, fastWatch, func(c *Config) { c.Now = clock.Now })
	run(t, s.Watch)

	soon := nodeSpec("n1", "")
	soon.notBefore, soon.notAfter = clock.Now().Add(30*time.Minute), clock.Now().Add(2*time.Hour)
	newCert, newKey := ca.issue(t, soon)
	f.write(t, newCert, newKey, nil)
	testwait.Eventually(t, 10*time.Second, "a reload failing with not yet valid", func() error {
		if err := s.Stats().LastError; !errors.Is(err, ErrNotYetValid) {
			return fmt.Errorf("last error %v", err)
		}
		return nil
	})
	if got := s.NotAfter(); !got.Equal(leafOf(t, certPEM).NotAfter) {
		t.Fatalf("NotAfter = %v: the certificate not yet valid was taken", got)
	}
	clock.Advance(31 * time.Minute)
	want := leafOf(t, newCert).NotAfter
	testwait.Eventually(t, 10*time.Second, "the retry to load the new certificate", func() error {
		if got := s.NotAfter(); !got.Equal(want) {
			return fmt.Errorf("NotAfter %v, last error %v", got, s.Stats().LastError)
		}
		return nil
	})
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestReloadOnSignal(t *testing.T) {
	p := newPair(t)
	sig := make(chan os.Signal, 1)
	run(t, func(ctx context.Context) error { return p.server.ReloadOn(ctx, sig) })
	certPEM, keyPEM := p.ca.issue(t, nodeSpec("n1", ""))
	p.files.write(t, certPEM, keyPEM, nil)
	sig <- syscall.SIGHUP
	wantServed(t, p.srv, p.cli, certPEM)

	// A failed reload on signal keeps serving, and is counted.
	p.files.write(t, []byte("garbage"), nil, nil)
	sig <- syscall.SIGHUP
	testwait.Eventually(t, 10*time.Second, "a failed reload", func() bool { return p.server.Stats().Failures == 1 })
	wantServed(t, p.srv, p.cli, certPEM)
}

// A CA rotation without downtime: the bundle trusts old and new while
// certificates move over, then drops the old CA, all by reloads.
func TestCARotationOverlap(t *testing.T) {
	oldCA, newCA := newCA(t, "old"), newCA(t, "new")
	srvCert, srvKey := oldCA.issue(t, nodeSpec("n1", ""))
	server, sf := newSource(t, srvCert, srvKey, oldCA.pem)
	srv := mustServerConfig(t, server, ClusterPlane)

	dialer := func(ca *testCA, id string, trust []byte) *tls.Config {
		c, k := ca.issue(t, nodeSpec(id, ""))
		s, _ := newSource(t, c, k, trust)
		return mustClientConfig(t, s, ClientPolicy{Plane: ClusterPlane})
	}
	overlap := bundle(oldCA, newCA)
	oldPeer := dialer(oldCA, "n2", overlap)
	newPeer := dialer(newCA, "n3", overlap)
	newOnly := dialer(newCA, "n4", newCA.pem)

	ok := func(cli *tls.Config, what string) {
		t.Helper()
		if o := handshake(t, srv, cli); o.serverErr != nil || o.clientErr != nil {
			t.Fatalf("%s refused: server %v, client %v", what, o.serverErr, o.clientErr)
		}
	}
	refused := func(cli *tls.Config, what string) {
		t.Helper()
		if o := handshake(t, srv, cli); o.serverErr == nil || o.clientErr == nil {
			t.Fatalf("%s accepted", what)
		}
	}

	ok(oldPeer, "old-CA peer before the rotation")
	refused(newPeer, "new-CA peer before the server trusts the new CA")

	sf.write(t, nil, nil, overlap)
	must(t, server.Reload())
	ok(oldPeer, "old-CA peer during the overlap")
	ok(newPeer, "new-CA peer during the overlap")
	refused(newOnly, "peer trusting only the new CA, server still on an old-CA certificate")

	c, k := newCA.issue(t, nodeSpec("n1", ""))
	sf.write(t, c, k, overlap)
	must(t, server.Reload())
	ok(oldPeer, "old-CA peer, server on a new-CA certificate")
	ok(newOnly, "new-CA-only peer, server on a new-CA certificate")

	sf.write(t, nil, nil, newCA.pem)
	must(t, server.Reload())
	refused(oldPeer, "old-CA peer after the old CA left the bundle")
	ok(newPeer, "new-CA peer after the rotation")
}
