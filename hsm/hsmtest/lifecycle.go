package hsmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meridiankms/meridian/hsm"
)

// call is one HSM method invoked with a given context, for the checks that
// every method must pass alike.
type call struct {
	name string
	do   func(ctx context.Context, h hsm.HSM, v uint32, blob []byte) error
}

var calls = []call{
	{"DomainKeyVersions", func(ctx context.Context, h hsm.HSM, _ uint32, _ []byte) error {
		_, err := h.DomainKeyVersions(ctx)
		return err
	}},
	{"CurrentDomainKeyVersion", func(ctx context.Context, h hsm.HSM, _ uint32, _ []byte) error {
		_, err := h.CurrentDomainKeyVersion(ctx)
		return err
	}},
	{"Wrap", func(ctx context.Context, h hsm.HSM, v uint32, _ []byte) error {
		_, err := h.Wrap(ctx, v, make([]byte, 32))
		return err
	}},
	{"Unwrap", func(ctx context.Context, h hsm.HSM, v uint32, blob []byte) error {
		_, err := h.Unwrap(ctx, v, blob)
		return err
	}},
	{"Random", func(ctx context.Context, h hsm.HSM, _ uint32, _ []byte) error {
		_, err := h.Random(ctx, 16)
		return err
	}},
	{"Health", func(ctx context.Context, h hsm.HSM, _ uint32, _ []byte) error {
		return h.Health(ctx)
	}},
}

func testCancelled(t *testing.T, h hsm.HSM) {
	vs := versions(t, h)
	v := vs[len(vs)-1]
	blob := wrap(t, h, v, random(t, h, 32))

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range calls {
		if err := c.do(cancelled, h, v, blob); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want context.Canceled", c.name, err)
		}
		if err := c.do(expired, h, v, blob); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s past its deadline: err = %v, want context.DeadlineExceeded", c.name, err)
		}
	}
	// A cancelled call leaves the HSM usable.
	if got := unwrap(t, h, v, blob); len(got) != 32 {
		t.Fatalf("unwrap after cancelled calls gave %d bytes", len(got))
	}
}

func testClosed(t *testing.T, h hsm.HSM) {
	vs := versions(t, h)
	v := vs[len(vs)-1]
	blob := wrap(t, h, v, random(t, h, 32))
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, c := range calls {
		if err := c.do(context.Background(), h, v, blob); !errors.Is(err, hsm.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want hsm.ErrClosed", c.name, err)
		}
	}
	if err := h.Close(); err != nil && !errors.Is(err, hsm.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// testConcurrent drives every method from 16 goroutines at once; under
// -race it also proves the backend's locking.
func testConcurrent(t *testing.T, h hsm.HSM) {
	const workers, rounds = 16, 40
	vs := versions(t, h)
	// Blobs wrapped before the storm must still unwrap during it.
	shared := random(t, h, 48)
	sharedBlob := wrap(t, h, vs[0], shared)

	ctx := context.Background()
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- worker(ctx, h, vs, w, rounds, shared, sharedBlob)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func worker(ctx context.Context, h hsm.HSM, vs []uint32, w, rounds int, shared, sharedBlob []byte) error {
	for i := range rounds {
		v := vs[(w+i)%len(vs)]
		n := MaterialSizes[(w+i)%len(MaterialSizes)]
		m, err := h.Random(ctx, n)
		if err != nil {
			return fmt.Errorf("worker %d: Random: %w", w, err)
		}
		blob, err := h.Wrap(ctx, v, m)
		if err != nil {
			return fmt.Errorf("worker %d: Wrap: %w", w, err)
		}
		got, err := h.Unwrap(ctx, v, blob)
		if err != nil {
			return fmt.Errorf("worker %d: Unwrap: %w", w, err)
		}
		if !bytes.Equal(got, m) {
			return fmt.Errorf("worker %d round %d: round trip mismatch", w, i)
		}
		got, err = h.Unwrap(ctx, vs[0], sharedBlob)
		if err != nil || !bytes.Equal(got, shared) {
			return fmt.Errorf("worker %d: shared blob: %v", w, err)
		}
		if _, err := h.CurrentDomainKeyVersion(ctx); err != nil {
			return fmt.Errorf("worker %d: CurrentDomainKeyVersion: %w", w, err)
		}
		if _, err := h.DomainKeyVersions(ctx); err != nil {
			return fmt.Errorf("worker %d: DomainKeyVersions: %w", w, err)
		}
		if err := h.Health(ctx); err != nil {
			return fmt.Errorf("worker %d: Health: %w", w, err)
		}
	}
	return nil
}
