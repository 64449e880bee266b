package node_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/internal/testwait"
	"github.com/meridiankms/meridian/node"
)

// lateNodeEnrolled: node 4 (a fresh token) joins later, is enrolled, and
// decrypts and verifies everything made before it existed.
func (f *hsmFixture) lateNodeEnrolled(t *testing.T) {
	i := f.c.Add("", func(_ int, cfg *node.Config) {
		h := usePKCS11(t, cfg)
		f.hsms = append(f.hsms, h)
	})
	f.checkEnrolled(t, i)
	f.c.WaitApplied(f.node(0).FSM().AppliedIndex())
	for _, s := range f.saved {
		f.checkSealed(t, i, s)
	}
}

// neverEnrolled: a member whose HSM never received the DK (its token was
// replaced by a fresh one and it restarted without joining again) refuses
// crypto with a clear Unavailable, is unready, and says why, without
// leaking anything. It then leaves so the rotation does not wait for it.
func (f *hsmFixture) neverEnrolled(t *testing.T) {
	var h hsmNode
	i := f.c.Add("", func(_ int, cfg *node.Config) { usePKCS11(t, cfg) })
	f.c.Stop(i)
	f.c.EditConfig(i, func(cfg *node.Config) { h = usePKCS11(t, cfg) })
	f.c.Resume(i) // a member already: it restarts from its Raft state

	n := f.node(i)
	defer func() {
		f.c.Stop(i)
		leader := f.c.WaitLeader()
		if err := f.node(leader).Cluster().RemoveServer(ctxT(t), n.ID()); err != nil {
			t.Errorf("remove the never-enrolled node: %v", err)
		}
		f.c.Forget(i)
	}()
	if vs, err := n.HSM().DomainKeyVersions(ctxT(t)); err != nil || len(vs) != 0 {
		t.Fatalf("never-enrolled token holds DK versions %v (err %v)", vs, err)
	}
	f.c.WaitApplied(f.node(0).FSM().AppliedIndex())

	err := n.Ready(ctxT(t))
	if !errors.Is(err, hsm.ErrNoDomainKey) || !strings.Contains(err.Error(), "domain key") {
		t.Errorf("Ready of a never-enrolled node = %v, want it to name the missing domain key", err)
	}
	testwait.Eventually(t, 5*time.Second, "never-enrolled node reports NOT_SERVING", func() bool {
		return healthStatus(t, n) == healthpb.HealthCheckResponse_NOT_SERVING
	})
	before := hsmErrors(t, n)
	cl := f.c.Client(i)
	for _, s := range f.saved {
		var err error
		if s.mac != nil {
			_, err = cl.VerifyMac(ctxT(t), &apiv1.VerifyMacRequest{KeyId: s.keyID, Message: s.pt, Mac: s.mac, MacAlgorithm: apiv1.MacAlgorithm(s.alg)})
		} else {
			req := &apiv1.DecryptRequest{CiphertextBlob: s.ct, EncryptionContext: s.ectx}
			if s.alg != apiv1.EncryptionAlgorithm_ENCRYPTION_ALGORITHM_SYMMETRIC_DEFAULT {
				req.KeyId, req.EncryptionAlgorithm = s.keyID, s.alg
			}
			_, err = cl.Decrypt(ctxT(t), req)
		}
		if err == nil {
			t.Fatalf("a node without the domain key opened %s (%s)", s.what, s.level)
		}
		if !isUnavailable(err) {
			t.Fatalf("%s (%s) on a never-enrolled node: got %v, want Unavailable", s.what, s.level, err)
		}
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Message == "" {
			t.Fatalf("error has no message: %v", err)
		}
		assertNoSecret(t, "never-enrolled error", err.Error(), h.pin, h.label, string(s.pt))
		if !strings.Contains(strings.ToLower(ce.Message), "domain key") {
			t.Errorf("the client is told %q: it does not say the node lacks the domain key (not enrolled)", ce.Message)
			break
		}
	}
	if got := hsmErrors(t, n); got <= before {
		t.Errorf("meridian_hsm_errors_total on the never-enrolled node stayed at %v", got)
	}
	logs := string(f.c.Logs.Bytes())
	if !strings.Contains(logs, "domain key not present") {
		t.Error("the node's logs never say that the domain key is missing")
	}
}
