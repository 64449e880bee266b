package nodetest

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
)

// Workload runs Encrypt+Decrypt round trips through one client until
// stopped, counting successes and keeping every failure.
type Workload struct {
	Name string
	cl   *client.Client
	key  string

	mu       sync.Mutex
	ok       int
	failures []error
	servedBy map[string]int // region -> calls served there
	// failovers counts calls that needed more than one attempt.
	failovers int
	// okAfter counts successes since the start or the last Mark().
	okAfter int

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// StartWorkload starts a workload; it is stopped by Finish or, if the
// test ends first, by the test's cleanup.
func StartWorkload(t testing.TB, name string, cl *client.Client, key string) *Workload {
	w := &Workload{Name: name, cl: cl, key: key, servedBy: map[string]int{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	t.Cleanup(w.Halt)
	return w
}

// Halt stops the workload and waits for its last call.
func (w *Workload) Halt() {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
}

func (w *Workload) run() {
	defer close(w.done)
	pt := []byte("workload " + w.Name)
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		err := w.roundTrip(pt)
		w.mu.Lock()
		if err != nil {
			w.failures = append(w.failures, err)
		} else {
			w.ok++
			w.okAfter++
		}
		w.mu.Unlock()
	}
}

func (w *Workload) roundTrip(pt []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var info client.CallInfo
	enc, err := w.cl.Encrypt(client.WithCallInfo(ctx, &info), &apiv1.EncryptRequest{KeyId: w.key, Plaintext: pt})
	if err != nil {
		return fmt.Errorf("encrypt (attempts %v): %w", info.Tries, err)
	}
	w.served(&info)
	dec, err := w.cl.Decrypt(client.WithCallInfo(ctx, &info), &apiv1.DecryptRequest{CiphertextBlob: enc.GetCiphertextBlob()})
	if err != nil {
		return fmt.Errorf("decrypt (attempts %v): %w", info.Tries, err)
	}
	w.served(&info)
	if string(dec.GetPlaintext()) != string(pt) {
		return fmt.Errorf("decrypt returned %q, want %q", dec.GetPlaintext(), pt)
	}
	return nil
}

func (w *Workload) served(info *client.CallInfo) {
	w.mu.Lock()
	w.servedBy[info.Region]++
	if info.Attempts > 1 {
		w.failovers++
	}
	w.mu.Unlock()
}

// Retried is how many calls needed more than one attempt.
func (w *Workload) Retried() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failovers
}

// Mark starts counting successes anew (okAfter) and forgets where calls
// were served so far.
func (w *Workload) Mark() {
	w.mu.Lock()
	w.okAfter = 0
	clear(w.servedBy)
	w.mu.Unlock()
}

func (w *Workload) SucceededSinceMark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.okAfter
}

// Finish stops the workload and reports every failure as a test error.
func (w *Workload) Finish(t testing.TB) (ok int, servedBy map[string]int) {
	t.Helper()
	w.Halt()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, err := range w.failures {
		if i == 5 {
			t.Errorf("workload %s: %d more failures", w.Name, len(w.failures)-5)
			break
		}
		t.Errorf("workload %s: data-plane call failed: %v", w.Name, err)
	}
	if w.ok == 0 {
		t.Errorf("workload %s made no successful call", w.Name)
	}
	return w.ok, maps.Clone(w.servedBy)
}

// String says how the workload is doing: successes, failures, the last.
func (w *Workload) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var last error
	if len(w.failures) > 0 {
		last = w.failures[len(w.failures)-1]
	}
	return fmt.Sprintf("%s: %d ok (%d since mark), %d failures, last: %v", w.Name, w.ok, w.okAfter, len(w.failures), last)
}
