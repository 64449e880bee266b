package node

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/hsm/hsmfault"
	"github.com/meridiankms/meridian/hsm/pkcs11/softhsmtest"
)

// hsmNode is one node of an HSM test cluster: its own SoftHSM token (or
// soft file) and a switch that makes its HSM fail.
type hsmNode struct {
	label, pin string
	faults     *hsmfault.Switch
}

// usePKCS11 gives cfg a fresh SoftHSM token of its own. A bootstrapping
// node makes the domain key in it; any other starts without one and is
// enrolled when it joins.
func usePKCS11(t testing.TB, cfg *Config) hsmNode {
	t.Helper()
	label := softhsmtest.Label(cfg.NodeID)
	module, pin := softhsmtest.NewToken(t, label)
	cfg.HSM = HSMConfig{Backend: "pkcs11", ModulePath: module, TokenLabel: label, PIN: pin,
		CreateIfMissing: cfg.Bootstrap}
	return hsmNode{label: label, pin: pin}
}

// useOwnSoft gives cfg a soft HSM file of its own (not the copied file of
// startCluster), so a joining soft node has to be enrolled.
func useOwnSoft(cfg *Config) {
	cfg.HSM = HSMConfig{Backend: "soft", SoftPath: cfg.DataDir + "-domain.sealed", Passphrase: testPassphrase,
		FastKDF: true, CreateIfMissing: cfg.Bootstrap}
}

// withFaults wraps the node's HSM in the fault decorator driven by the
// returned switch.
func withFaults(cfg *Config) *hsmfault.Switch {
	sw := new(hsmfault.Switch)
	cfg.HSMWrapper = func(h hsm.HSM) hsm.HSM { return hsmfault.Wrap(h, sw) }
	return sw
}

// startHSMCluster starts n nodes, node 1 bootstrapping, the others joining
// through it; setup picks each node's HSM (it runs after fastConfig and
// after Bootstrap/Join are set).
func startHSMCluster(t testing.TB, n int, setup func(i int, cfg *Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, dir: t.TempDir(), logs: &logSink{}}
	t.Cleanup(c.closeAll)
	for i := 0; i < n; i++ {
		c.add(setup)
		if i == 0 {
			c.waitLeader()
		}
	}
	return c
}

// add starts one more node joining through node 1 (or bootstrapping, if it
// is the first) and returns its index.
func (c *testCluster) add(setup func(i int, cfg *Config)) int {
	c.t.Helper()
	i := len(c.nodes)
	cfg := fastConfig(c.t, c.dir, i, c.logs)
	cfg.Bootstrap = i == 0
	if i > 0 {
		cfg.Join = []string{c.nodes[0].ClusterAddr()}
	}
	cfg.HSM.CreateIfMissing = cfg.Bootstrap
	setup(i, &cfg)
	c.cfgs = append(c.cfgs, cfg)
	c.nodes = append(c.nodes, nil)
	c.start(i)
	return i
}

// noEnrol hides the Enroller capability: a node with it joins without
// asking for the domain key, as a node whose enrolment was skipped would,
// and so never holds one.
type noEnrol struct{ hsm.HSM }

func (noEnrol) Enroller() (hsm.Enroller, bool) { return nil, false }

func hideEnroller(h hsm.HSM) hsm.HSM { return noEnrol{h} }

// hsmErrors sums meridian_hsm_errors_total over every label of n.
func hsmErrors(t testing.TB, n *Node) float64 {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatalf("gather metrics of %s: %v", n.ID(), err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "meridian_hsm_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += counterValue(m)
		}
	}
	return sum
}

func counterValue(m *dto.Metric) float64 { return m.GetCounter().GetValue() }

// healthStatus asks n's gRPC health service for the overall status.
func healthStatus(t testing.TB, n *Node) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	conn, err := grpc.NewClient(n.APIAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := healthpb.NewHealthClient(conn).Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health check of %s: %v", n.ID(), err)
	}
	return res.GetStatus()
}

// assertNoSecret fails if msg holds any of the secrets.
func assertNoSecret(t testing.TB, where, msg string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("%s: message %q contains a secret", where, msg)
		}
	}
}
