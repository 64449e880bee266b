package pkcs11_test

import (
	"context"
	"testing"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/hsmtest"
)

func TestContract(t *testing.T) {
	hsmtest.RunContract(t, func(t *testing.T) hsm.HSM { return withDK(t, 0) })
}

// With several DK versions the contract also checks that a blob does not
// open under a version other than its own.
func TestContractRotated(t *testing.T) {
	hsmtest.RunContract(t, func(t *testing.T) hsm.HSM { return withDK(t, 2) })
}

// A PKCS#11 token has every capability: key operations, enrolment, DK
// rotation, and its mechanism list through Token.
func TestCapabilities(t *testing.T) {
	h := withDK(t, 0)
	for _, c := range hsmtest.Capabilities {
		if present, ok := c.Has(h); !present || !ok {
			t.Errorf("%s() = (value present %v, %v), want the capability", c, present, ok)
		}
	}
	tk, _ := h.Token()
	ms, err := tk.Mechanisms(context.Background())
	if err != nil || len(ms) == 0 {
		t.Fatalf("Mechanisms through Token = %v, %v", ms, err)
	}
}
