package node_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/hsm/pkcs11"
	"github.com/meridiankms/meridian/hsm/pkcs11/softhsmtest"
	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/node/localcluster"
	"github.com/meridiankms/meridian/node/nodetest"
)

// TestHSMMixedBackends: enrolment works across backends, both ways. A soft
// node joins a cluster founded on a SoftHSM token, and a SoftHSM node joins
// a cluster founded on a soft HSM; in each, keys of both protection levels
// made on one node work on the other.
func TestHSMMixedBackends(t *testing.T) {
	for _, tc := range []struct {
		name          string
		founder, join string
	}{
		{"SoftJoinsPKCS11", "pkcs11", "soft"},
		{"PKCS11JoinsSoft", "soft", "pkcs11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backends := []string{tc.founder, tc.join}
			c := startHSMCluster(t, 2, func(i int, cfg *node.Config) {
				if backends[i] == "pkcs11" {
					usePKCS11(t, cfg)
				} else {
					nodetest.UseOwnSoft(cfg)
				}
			})
			want, err := c.Nodes[0].HSM().DomainKeyVersions(ctxT(t))
			if err != nil || len(want) == 0 {
				t.Fatalf("founder's DK versions %v, %v", want, err)
			}
			got, err := c.Nodes[1].HSM().DomainKeyVersions(ctxT(t))
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("%s joiner holds DK versions %v (err %v), founder %v", tc.join, got, err, want)
			}
			for _, level := range []apiv1.ProtectionLevel{apiv1.ProtectionLevel_PROTECTION_LEVEL_SOFTWARE, apiv1.ProtectionLevel_PROTECTION_LEVEL_HSM} {
				for a := range 2 {
					b := 1 - a
					res := mustCreateKey(t, c.Client(a), &apiv1.CreateKeyRequest{ProtectionLevel: level})
					c.WaitApplied(res.GetCommitIndex())
					id := res.GetKeyMetadata().GetKeyId()
					pt := []byte("across backends")
					ct := mustEncrypt(t, c.Client(a), id, pt)
					dec, err := c.Client(b).Decrypt(ctxT(t), &apiv1.DecryptRequest{CiphertextBlob: ct})
					if err != nil || !bytes.Equal(dec.GetPlaintext(), pt) {
						t.Fatalf("%v key made on the %s node: decrypt on the %s node: %v", level, backends[a], backends[b], err)
					}
					mac := mustCreateKey(t, c.Client(a), &apiv1.CreateKeyRequest{KeySpec: apiv1.KeySpec_KEY_SPEC_HMAC_256, ProtectionLevel: level})
					c.WaitApplied(mac.GetCommitIndex())
					macID := mac.GetKeyMetadata().GetKeyId()
					m, err := c.Client(a).GenerateMac(ctxT(t), &apiv1.GenerateMacRequest{KeyId: macID, Message: pt, MacAlgorithm: apiv1.MacAlgorithm_MAC_ALGORITHM_HMAC_SHA_256})
					if err != nil {
						t.Fatal(err)
					}
					v, err := c.Client(b).VerifyMac(ctxT(t), &apiv1.VerifyMacRequest{KeyId: macID, Message: pt, Mac: m.GetMac(), MacAlgorithm: apiv1.MacAlgorithm_MAC_ALGORITHM_HMAC_SHA_256})
					if err != nil || !v.GetMacValid() {
						t.Fatalf("%v MAC made on the %s node: verify on the %s node: valid=%v err=%v", level, backends[a], backends[b], v.GetMacValid(), err)
					}
				}
			}
		})
	}
}

// TestHSMStartupErrors: a node whose PKCS#11 set-up is wrong does not
// start, and node.Start says what is wrong (the module path, the label, a
// wrong PIN) without ever showing a PIN. Nothing is left behind: the same
// addresses then serve a node with the right settings.
func TestHSMStartupErrors(t *testing.T) {
	dir := t.TempDir()
	good := localcluster.Config(dir, 0)
	good.Bootstrap = true
	h := usePKCS11(t, &good)
	const wrongPIN = "wrong-pin-7391"
	for _, tc := range []struct {
		name   string
		change func(*node.HSMConfig)
		want   error
		says   []string
	}{
		{"missing module", func(c *node.HSMConfig) { c.ModulePath = "/nonexistent/libvendor-pkcs11.so" },
			pkcs11.ErrModule, []string{"/nonexistent/libvendor-pkcs11.so", "does not exist"}},
		{"unknown token label", func(c *node.HSMConfig) { c.TokenLabel = "no-such-token" },
			pkcs11.ErrTokenNotFound, []string{`"no-such-token"`, h.label}},
		{"wrong PIN", func(c *node.HSMConfig) { c.PIN = wrongPIN },
			pkcs11.ErrWrongPIN, []string{h.label, "wrong PIN"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.change(&cfg.HSM)
			n, err := node.Start(ctxT(t), cfg)
			if err == nil {
				n.Close()
				t.Fatal("node started")
			}
			t.Logf("node.Start: %v", err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			assertNoSecret(t, tc.name, err.Error(), h.pin, wrongPIN, softhsmtest.SOPIN)
		})
	}
	ctx := ctxT(t)
	n, err := node.Start(ctx, good)
	if err != nil {
		t.Fatalf("the right settings on the same addresses: %v", err)
	}
	defer n.Close()
	if vs, err := n.HSM().DomainKeyVersions(ctx); err != nil || len(vs) != 1 {
		t.Fatalf("bootstrap made DK versions %v (err %v), want one", vs, err)
	}
}
