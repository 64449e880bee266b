package node_test

import (
	"os"
	"testing"

	"github.com/meridiankms/meridian/hsm/pkcs11/softhsmtest"
)

// TestMain points SOFTHSM2_CONF at a fresh token directory for the whole
// package (SoftHSM reads it once, at C_Initialize), so every test may give
// its nodes their own SoftHSM tokens. Without SoftHSM2 the package FAILS:
// the PKCS#11 guarantees are not optional.
func TestMain(m *testing.M) { os.Exit(softhsmtest.Run(m)) }
