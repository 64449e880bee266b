package keystore

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
	"github.com/meridiankms/meridian/hsm/soft"
	"github.com/meridiankms/meridian/internal/testwait"
)

// progressLog records RotateDomainKey's progress calls.
type progressLog struct {
	mu    sync.Mutex
	calls [][2]int
}

func (p *progressLog) report(done, total int) {
	p.mu.Lock()
	p.calls = append(p.calls, [2]int{done, total})
	p.mu.Unlock()
}

// check asserts the calls run from (0, total) to (total, total), rising.
func (p *progressLog) check(t *testing.T, total int) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.calls) == 0 || p.calls[0] != [2]int{0, total} || p.calls[len(p.calls)-1] != [2]int{total, total} {
		t.Fatalf("progress %v, want (0,%d) ... (%d,%d)", p.calls, total, total, total)
	}
	for i := 1; i < len(p.calls); i++ {
		if p.calls[i][0] <= p.calls[i-1][0] && total > 0 || p.calls[i][1] != total {
			t.Fatalf("progress %v does not rise", p.calls)
		}
	}
}

// sample is a ciphertext and the context it was made with.
type sample struct {
	blob []byte
	ctx  map[string]string
}

// rotationFixture makes keys of every family at both levels, some rotated,
// and ciphertexts made before the DK rotation.
func rotationFixture(t *testing.T, h *harness) (samples []sample, ks *keySet, versions int) {
	t.Helper()
	for _, level := range []ProtectionLevel{ProtectionSoftware, ProtectionHSM} {
		h.level = level
		for i := 0; i < 3; i++ {
			k := h.create("", "")
			_, _, err := h.s.RotateKeyOnDemand(bg, k.KeyID)
			must(t, err)
			for j := 0; j < 2; j++ {
				c := map[string]string{"i": fmt.Sprint(i)}
				e, err := h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte(fmt.Sprint(level, i, j)), EncryptionContext: c})
				must(t, err)
				samples = append(samples, sample{e.CiphertextBlob, c})
			}
		}
		ks = makeKeySet(t, h)
		samples = append(samples, sample{blob: ks.blob})
	}
	h.level = ""
	st, err := h.s.DomainKeyStatus(bg)
	must(t, err)
	return samples, ks, st.Total
}

func mustCommand(t *testing.T, ct fsmpb.CommandType, p proto.Message) *fsmpb.Command {
	t.Helper()
	c, err := fsm.NewCommand(ct, p, "", time.Now())
	must(t, err)
	return c
}

func TestRotateDomainKeyUnderLoad(t *testing.T) {
	h := newHarness(t, Config{RewrapBatch: 3})
	samples, ks, total := rotationFixture(t, h)
	if total != 2*(3*2+4) {
		t.Fatalf("fixture has %d versions", total)
	}
	st, err := h.s.DomainKeyStatus(bg)
	must(t, err)
	if st.Current != 1 || st.Versions[1] != total || st.Pending != 0 || fmt.Sprint(st.HSMVersions) != "[1]" {
		t.Fatalf("status before: %+v", st)
	}

	// Load: every crypto operation, and decryption of the old ciphertexts,
	// while the HSM rotates and the keystore re-wraps.
	ops := cryptoOps(h, ks)
	var stop atomic.Bool
	var failures, served atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; !stop.Load(); i++ {
				c := samples[i%len(samples)]
				if _, err := h.s.Decrypt(bg, DecryptInput{CiphertextBlob: c.blob, EncryptionContext: c.ctx}); err != nil {
					t.Errorf("decrypt during the rotation: %v", err)
					failures.Add(1)
				}
				for name, op := range ops {
					if err := op(); err != nil {
						t.Errorf("%s during the rotation: %v", name, err)
						failures.Add(1)
					}
				}
				served.Add(1)
			}
		}()
	}
	testwait.Eventually(t, 10*time.Second, "load to start", func() bool { return served.Load() > 0 })

	newDK, err := h.hsm.RotateDomainKey(bg)
	must(t, err)
	var progress progressLog
	got, err := h.s.RotateDomainKey(bg, progress.report)
	must(t, err)
	after := served.Load()
	testwait.Eventually(t, 10*time.Second, "load to go on after the rotation", func() bool { return served.Load() > after })
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d requests failed during the rotation", failures.Load())
	}
	if got != newDK || newDK != 2 {
		t.Fatalf("RotateDomainKey = v%d, HSM rotated to v%d", got, newDK)
	}
	progress.check(t, total)

	st, err = h.s.DomainKeyStatus(bg)
	must(t, err)
	if st.Current != 2 || st.Versions[2] != total || st.Versions[1] != 0 || st.Pending != 0 {
		t.Fatalf("status after: %+v", st)
	}

	// Every old ciphertext decrypts from the new blobs, not only from the
	// cache: a second node over the same replica starts cold.
	cold := h.otherNode("n-cold", h.hsm)
	for i, c := range samples {
		if _, err := cold.Decrypt(bg, DecryptInput{CiphertextBlob: c.blob, EncryptionContext: c.ctx}); err != nil {
			t.Fatalf("ciphertext %d after the rotation, cold cache: %v", i, err)
		}
	}
	for name, op := range cryptoOps(&harness{s: cold}, ks) {
		if err := op(); err != nil {
			t.Fatalf("%s after the rotation, cold cache: %v", name, err)
		}
	}
	keys, _ := h.fsm.Keys("", 0)
	for _, k := range keys {
		for _, v := range k.GetVersions() {
			if _, err := h.hsm.Unwrap(bg, 1, v.GetWrappedMaterial()); err == nil {
				t.Fatalf("key %s v%d still unwraps under DK v1", k.GetId(), v.GetVersion())
			}
		}
	}

	// Re-running is a no-op: nothing proposed.
	index := h.fsm.AppliedIndex()
	var again progressLog
	got, err = h.s.RotateDomainKey(bg, again.report)
	must(t, err)
	if got != 2 || h.fsm.AppliedIndex() != index {
		t.Fatalf("re-run returned v%d and moved the log from %d to %d", got, index, h.fsm.AppliedIndex())
	}
	again.check(t, 0)
}

// failingApplier fails every REWRAP_VERSIONS command after the first n.
type failingApplier struct {
	Applier
	n     atomic.Int32
	after int32
}

func (f *failingApplier) Apply(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Result, error) {
	if cmd.GetType() == fsmpb.CommandType_COMMAND_TYPE_REWRAP_VERSIONS && f.n.Add(1) > f.after {
		return nil, fmt.Errorf("leader lost")
	}
	return f.Applier.Apply(ctx, cmd)
}

func TestRotateDomainKeyResumes(t *testing.T) {
	h := newHarness(t, Config{})
	for i := 0; i < 7; i++ {
		h.create("", "")
	}
	_, err := h.hsm.RotateDomainKey(bg)
	must(t, err)
	flaky := &failingApplier{Applier: h.ap, after: 1}
	s, err := New(Config{SchedulerInterval: -1, RewrapBatch: 3, Now: h.clock.Now}, h.fsm, h.hsm, flaky)
	must(t, err)
	defer s.Close()
	_, err = s.RotateDomainKey(bg, nil)
	wantErr(t, err, ErrUnavailable, "(3 of 7 versions re-wrapped; run again to resume)")
	st, err := s.DomainKeyStatus(bg)
	must(t, err)
	if st.Versions[2] != 3 || st.Pending != 4 {
		t.Fatalf("after the interrupted run: %+v", st)
	}
	var progress progressLog
	_, err = h.s.RotateDomainKey(bg, progress.report)
	must(t, err)
	progress.check(t, 4)
	if st, _ := h.s.DomainKeyStatus(bg); st.Pending != 0 || st.Versions[2] != 7 {
		t.Fatalf("after resuming: %+v", st)
	}
}

func TestRotateDomainKeyRefusesABehindHSM(t *testing.T) {
	h := newHarness(t, Config{})
	k := h.create("", "")
	// Another node rotated to DK v3 and re-wrapped; this node's HSM is
	// still at v1.
	res, err := h.ap.Apply(bg, mustCommand(t, fsmpb.CommandType_COMMAND_TYPE_REWRAP_VERSIONS, &fsmpb.RewrapVersions{
		Versions: []*fsmpb.Rewrap{{KeyId: k.KeyID, Version: 1, FromDomainKeyVersion: 1, ToDomainKeyVersion: 3, WrappedMaterial: bytes.Repeat([]byte{1}, 40)}},
	}))
	must(t, err)
	must(t, resultErr(res))
	_, err = h.s.RotateDomainKey(bg, nil)
	wantErr(t, err, ErrUnavailable, "this node's HSM holds domain key versions up to v1, but key "+k.KeyID+" v1 is wrapped under v3")

	// A node whose HSM has no DK at all reports so in its status.
	empty, err := soft.CreateEmpty(bg, soft.Config{
		Path:       filepath.Join(t.TempDir(), "empty.sealed"),
		Passphrase: []byte("keystore test passphrase"),
		KDF:        soft.KDFParams{Time: soft.MinKDFTime, MemoryKiB: soft.MinKDFMemoryKiB, Threads: 1},
	})
	must(t, err)
	defer empty.Close()
	st, err := h.otherNode("n-new", empty).DomainKeyStatus(bg)
	must(t, err)
	if st.Current != 0 || len(st.HSMVersions) != 0 || st.Versions[3] != 1 || st.Pending != 1 {
		t.Fatalf("status on a node without DK: %+v", st)
	}
	_, err = h.otherNode("n-new2", empty).RotateDomainKey(bg, nil)
	wantErr(t, err, ErrUnavailable, "")
}
