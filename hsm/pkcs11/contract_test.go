package pkcs11_test

import (
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
