package main

import (
	"os"
	"testing"

	"github.com/meridiankms/meridian/hsm/pkcs11/softhsmtest"
)

// TestMain points SOFTHSM2_CONF at a fresh token directory, so `operator
// hsm init` and `hsm status --offline` run against real SoftHSM2 tokens.
// Like every PKCS#11 test, it fails (not skips) without SoftHSM2.
func TestMain(m *testing.M) { os.Exit(softhsmtest.Run(m)) }
