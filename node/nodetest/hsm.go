package nodetest

import (
	"testing"

	"github.com/meridiankms/meridian/hsm/pkcs11/softhsmtest"
	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/node/localcluster"
)

// UsePKCS11 gives cfg a fresh SoftHSM token of its own and returns its
// label and PIN. A bootstrapping node makes the domain key in it; any
// other starts without one and is enrolled when it joins. The test binary
// must run softhsmtest.Run from its TestMain.
func UsePKCS11(t testing.TB, cfg *node.Config) (label, pin string) {
	t.Helper()
	label = softhsmtest.Label(cfg.NodeID)
	module, pin := softhsmtest.NewToken(t, label)
	cfg.HSM = node.HSMConfig{Backend: "pkcs11", ModulePath: module, TokenLabel: label, PIN: pin,
		CreateIfMissing: cfg.Bootstrap}
	return label, pin
}

// UseOwnSoft gives cfg a soft HSM file of its own next to its data dir
// (not the shared sealed file), so a joining soft node has to be enrolled.
func UseOwnSoft(cfg *node.Config) {
	cfg.HSM = node.HSMConfig{Backend: "soft", SoftPath: cfg.DataDir + "-domain.sealed", Passphrase: localcluster.Passphrase,
		FastKDF: true, CreateIfMissing: cfg.Bootstrap}
}
