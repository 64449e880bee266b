package transport

import (
	"strings"
	"testing"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// Every call reaches the store with a Principal in its context: over
// plaintext (the harness) the anonymous one, which is not the same as
// none (a call that skipped authentication). The access log names it.
// Certificate-backed principals are proven end to end in node's TLS tests.
func TestEveryCallCarriesItsPrincipal(t *testing.T) {
	h := newHarness(t)
	if _, err := h.client.DescribeKey(testCtx(t), &apiv1.DescribeKeyRequest{KeyId: "k"}); err != nil {
		t.Fatal(err)
	}
	var ok, anon bool
	h.store.set(func(f *fakeStore) { ok, anon = f.hasPrincipal, f.principal.IsAnonymous() })
	if !ok || !anon {
		t.Fatalf("store saw principal present=%v anonymous=%v; want the anonymous principal", ok, anon)
	}
	if !strings.Contains(h.logs.String(), `"principal":{"kind":"anonymous"}`) {
		t.Errorf("the access log does not name the anonymous caller: %s", h.logs.String())
	}
}
