package hsm_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/hsmtest"
)

func passThrough(ctx context.Context, _ hsm.Op, call func(context.Context) error) error {
	return call(ctx)
}

func TestInterceptForwardsHonestly(t *testing.T) {
	hsmtest.RunDecoratorContract(t, func(_ *testing.T, h hsm.HSM) hsm.HSM {
		return hsm.Intercept(h, passThrough)
	})
}

// Every call, through a capability too, passes the interceptor once,
// named by its Op, and an interceptor that refuses keeps it from the HSM.
func TestInterceptSeesEveryCall(t *testing.T) {
	refused := errors.New("refused")
	for _, c := range hsmtest.Calls {
		t.Run(string(c.Op), func(t *testing.T) {
			var seen []hsm.Op
			s := hsmtest.NewStub()
			h := hsm.Intercept(s, func(ctx context.Context, op hsm.Op, call func(context.Context) error) error {
				seen = append(seen, op)
				return call(ctx)
			})
			if _, err := c.Do(context.Background(), h); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seen, []hsm.Op{c.Op}) {
				t.Errorf("interceptor saw %v, want [%s]", seen, c.Op)
			}

			s = hsmtest.NewStub()
			h = hsm.Intercept(s, func(context.Context, hsm.Op, func(context.Context) error) error { return refused })
			if _, err := c.Do(context.Background(), h); !errors.Is(err, refused) {
				t.Errorf("err = %v, want the interceptor's", err)
			}
			if calls := s.Calls(); len(calls) != 0 {
				t.Errorf("a refused call reached the HSM: %v", calls)
			}
		})
	}
}

// The interceptor's context is the one the HSM receives.
func TestInterceptPassesItsContext(t *testing.T) {
	type key struct{}
	var got any
	h := hsm.Intercept(ctxProbe{hsmtest.NewStub(), func(ctx context.Context) { got = ctx.Value(key{}) }},
		func(ctx context.Context, _ hsm.Op, call func(context.Context) error) error {
			return call(context.WithValue(ctx, key{}, "interceptor"))
		})
	if err := h.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got != "interceptor" {
		t.Fatalf("the HSM saw context value %v", got)
	}
}

// ctxProbe reports the context its Health receives.
type ctxProbe struct {
	*hsmtest.Stub
	saw func(context.Context)
}

func (p ctxProbe) Health(ctx context.Context) error {
	p.saw(ctx)
	return p.Stub.Health(ctx)
}
