package node_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/internal/testwait"
)

// enrolFrom hands every DK version of node from's HSM to node to's, as
// the join does: to's HSM makes a transport key, from's wraps the DKs to
// it, the bundle crosses in its wire form, to's HSM unwraps it.
func (f *hsmFixture) enrolFrom(t *testing.T, from, to int) {
	t.Helper()
	src, ok1 := f.node(from).HSM().Enroller()
	dst, ok2 := f.node(to).HSM().Enroller()
	if !ok1 || !ok2 {
		t.Fatal("node HSMs do not enrol")
	}
	pub, err := dst.TransportPublicKey(ctxT(t))
	if err != nil {
		t.Fatalf("%s transport key: %v", f.node(to).ID(), err)
	}
	b, err := src.ExportDomainKeys(ctxT(t), pub)
	if err != nil {
		t.Fatalf("export DKs from %s: %v", f.node(from).ID(), err)
	}
	wire, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got hsm.DomainKeyBundle
	if err := got.UnmarshalBinary(wire); err != nil {
		t.Fatal(err)
	}
	if err := dst.ImportDomainKeys(ctxT(t), &got); err != nil {
		t.Fatalf("import DKs into %s: %v", f.node(to).ID(), err)
	}
}

// loadKey is a key the load goroutines use; fresh ones are first used
// only once the re-wrap starts, so nodes unwrap them cold, mid-rotation.
type loadKey struct {
	id    string
	fresh bool
}

// rotateUnderLoad: four goroutines encrypt and decrypt through different
// nodes while the DK rotates: a new version in node 1's token, handed to
// every other token by an enrolment exchange, then every key version
// re-wrapped through Raft. No request may fail; every old ciphertext still
// opens everywhere; every version ends under the new DK.
func (f *hsmFixture) rotateUnderLoad(t *testing.T) {
	nodes := len(f.c.Nodes)
	var keys []loadKey
	for _, s := range f.saved {
		if s.ectx != nil { // the symmetric keys of both levels
			keys = append(keys, loadKey{id: s.keyID})
		}
	}
	for _, level := range []apiv1.ProtectionLevel{apiv1.ProtectionLevel_PROTECTION_LEVEL_SOFTWARE, apiv1.ProtectionLevel_PROTECTION_LEVEL_HSM} {
		for range 2 {
			res := mustCreateKey(t, f.c.Client(0), &apiv1.CreateKeyRequest{ProtectionLevel: level})
			keys = append(keys, loadKey{id: res.GetKeyMetadata().GetKeyId(), fresh: true})
			f.c.WaitApplied(res.GetCommitIndex())
		}
	}
	oldDK, err := f.node(0).HSM().CurrentDomainKeyVersion(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}

	var (
		ops, failures atomic.Int64
		rewrapping    atomic.Bool
		stop          = make(chan struct{})
		wg            sync.WaitGroup
		mu            sync.Mutex
		made          []sealed
		firstErrs     []string
	)
	for w := 0; w < 4; w++ {
		enc, dec := f.c.Client(w%nodes), f.c.Client((w+1)%nodes)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				key := keys[k%len(keys)]
				if key.fresh && !rewrapping.Load() {
					continue
				}
				pt := []byte(fmt.Sprintf("load %d/%d", w, k))
				ectx := map[string]string{"w": fmt.Sprint(w)}
				err := func() error {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					e, err := enc.Encrypt(ctx, &apiv1.EncryptRequest{KeyId: key.id, Plaintext: pt, EncryptionContext: ectx})
					if err != nil {
						return fmt.Errorf("encrypt: %w", err)
					}
					d, err := dec.Decrypt(ctx, &apiv1.DecryptRequest{CiphertextBlob: e.GetCiphertextBlob(), EncryptionContext: ectx})
					if err != nil {
						return fmt.Errorf("decrypt: %w", err)
					}
					if !bytes.Equal(d.GetPlaintext(), pt) {
						return fmt.Errorf("decrypt: wrong plaintext")
					}
					if k%16 == 0 {
						mu.Lock()
						made = append(made, sealed{what: "load", keyID: key.id, pt: pt, ct: e.GetCiphertextBlob(), ectx: ectx})
						mu.Unlock()
					}
					return nil
				}()
				ops.Add(1)
				if err != nil {
					failures.Add(1)
					mu.Lock()
					if len(firstErrs) < 5 {
						firstErrs = append(firstErrs, fmt.Sprintf("worker %d key %s: %v", w, key.id, err))
					}
					mu.Unlock()
				}
			}
		}()
	}
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopLoad()
	waitOps := func(n int64) {
		target := ops.Load() + n
		testwait.Eventually(t, 30*time.Second, fmt.Sprintf("%d more load operations", n), func() bool { return ops.Load() >= target })
	}
	waitOps(40)

	began := time.Now()
	// (a) A new DK version, made inside node 1's token.
	r, ok := f.node(0).HSM().DomainKeyRotator()
	if !ok {
		t.Fatal("node HSM cannot rotate the domain key")
	}
	newDK, err := r.RotateDomainKey(ctxT(t))
	if err != nil {
		t.Fatalf("rotate the DK in node 1's token: %v", err)
	}
	if newDK <= oldDK {
		t.Fatalf("new DK version %d is not after %d", newDK, oldDK)
	}
	waitOps(20)
	// (b) Every other token receives it before anything is wrapped under it.
	for i := 1; i < nodes; i++ {
		f.enrolFrom(t, 0, i)
	}
	f.checkEnrolled(t, seq(1, nodes)...)
	waitOps(20)
	// (c) Re-wrap every key version through Raft, while fresh keys are
	// first unwrapped on the nodes.
	rewrapping.Store(true)
	var steps []string
	got, err := f.node(0).KeyStore().RotateDomainKey(ctxT(t), func(done, total int) {
		steps = append(steps, fmt.Sprintf("%d/%d", done, total))
	})
	if err != nil {
		t.Fatalf("re-wrap: %v", err)
	}
	if got != newDK {
		t.Fatalf("re-wrap moved versions to DK v%d, want v%d", got, newDK)
	}
	waitOps(80)
	stopLoad()
	t.Logf("DK v%d -> v%d in %v under load: %d requests (encrypt+decrypt pairs), %d failed; re-wrap progress %v",
		oldDK, newDK, time.Since(began).Round(time.Millisecond), ops.Load(), failures.Load(), steps)
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during the DK rotation: %v", n, ops.Load(), firstErrs)
	}

	f.c.WaitApplied(f.node(0).FSM().AppliedIndex())
	for i, n := range f.c.Nodes {
		keys, _ := n.FSM().Keys("", 0)
		for _, k := range keys {
			for _, v := range k.GetVersions() {
				if v.GetDomainKeyVersion() != newDK {
					t.Fatalf("%s: key %s v%d is still under DK v%d", n.ID(), k.GetId(), v.GetVersion(), v.GetDomainKeyVersion())
				}
			}
		}
		st, err := n.KeyStore().DomainKeyStatus(ctxT(t))
		if err != nil || st.Pending != 0 || st.Current != newDK || st.Versions[newDK] != st.Total {
			t.Fatalf("%s domain key status %+v (err %v)", n.ID(), st, err)
		}
		for _, s := range append(f.saved, made...) {
			f.checkSealed(t, i, s)
		}
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}
