package pkcs11_test

import (
	"context"
	"testing"

	"github.com/meridiankms/meridian/hsm/pkcs11"
)

func TestMechanismsOnSoftHSM(t *testing.T) {
	h, err := pkcs11.Open(context.Background(), newConfig(t, "mechs"))
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, h)
	ms, err := h.Mechanisms(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	required := 0
	for _, m := range ms {
		// SoftHSM 2.6 offers every mechanism Meridian uses.
		if !m.Present {
			t.Errorf("%s reported absent on SoftHSM", m.Name)
		}
		if m.Use == "" || m.Name == "" {
			t.Errorf("mechanism %#x lacks a name or use: %+v", m.Code, m)
		}
		if m.Required {
			required++
		}
	}
	if len(ms) < 10 || required != 2 {
		t.Fatalf("got %d mechanisms, %d required; want >= 10 and 2 required (key gen, key wrap)", len(ms), required)
	}
	h.Close()
	if _, err := h.Mechanisms(context.Background()); err == nil {
		t.Fatal("Mechanisms on a closed HSM succeeded")
	}
}
