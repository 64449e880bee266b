package soft

import (
	"context"
	"testing"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/hsmtest"
)

func TestContract(t *testing.T) {
	hsmtest.RunContract(t, func(t *testing.T) hsm.HSM {
		return mustCreate(t, testConfig(t))
	})
}

// With several DK versions the contract also checks that a blob does not
// open under a version other than its own.
func TestContractRotated(t *testing.T) {
	hsmtest.RunContract(t, func(t *testing.T) hsm.HSM {
		h := mustCreate(t, testConfig(t))
		for range 2 {
			if _, err := h.RotateDomainKey(context.Background()); err != nil {
				t.Fatalf("RotateDomainKey: %v", err)
			}
		}
		return h
	})
}

// Reopening from the file must give an HSM that meets the contract too,
// not only the one Create returned.
func TestContractReopened(t *testing.T) {
	hsmtest.RunContract(t, func(t *testing.T) hsm.HSM {
		cfg := testConfig(t)
		if err := mustCreate(t, cfg).Close(); err != nil {
			t.Fatal(err)
		}
		return mustOpen(t, cfg)
	})
}

// The soft backend runs key operations, enrols and rotates; it is no
// device, so it has no Token.
func TestCapabilities(t *testing.T) {
	h := mustCreate(t, testConfig(t))
	for _, c := range hsmtest.Capabilities {
		want := c.String() != hsmtest.CapToken.String()
		if present, ok := c.Has(h); present != want || ok != want {
			t.Errorf("%s() = (value present %v, %v), want %v", c, present, ok, want)
		}
	}
}
