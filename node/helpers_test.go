package node_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
	"github.com/meridiankms/meridian/node"
	"github.com/meridiankms/meridian/node/localcluster"
	"github.com/meridiankms/meridian/node/nodetest"
)

// The node tests' shorthands over node/nodetest, the one in-process
// cluster harness.

// startCluster starts n nodes; node 1 bootstraps on the shared soft HSM
// file and the others join through the nodes before them.
func startCluster(t testing.TB, n int, tweak func(*node.Config)) *nodetest.T {
	t.Helper()
	return nodetest.Start(t, localcluster.Options{Nodes: n, Setup: func(_ int, cfg *node.Config) {
		if tweak != nil {
			tweak(cfg)
		}
	}})
}

// startRegions starts perRegion gossiping nodes in each of the three
// regions, their node-to-node traffic through one netsim.Sim, and returns
// once every node is in Raft and knows the leader; placement converges
// afterwards (WaitSpread).
func startRegions(t testing.TB, perRegion int, tweak func(*node.Config)) *nodetest.T {
	t.Helper()
	return nodetest.Start(t, localcluster.Options{Nodes: 3 * perRegion, Regional: true, Setup: func(_ int, cfg *node.Config) {
		if tweak != nil {
			tweak(cfg)
		}
	}})
}

// startHSMCluster starts n nodes, node 1 bootstrapping, the others
// joining; setup picks each node's HSM (it runs after the harness set
// Bootstrap and Join).
func startHSMCluster(t testing.TB, n int, setup func(i int, cfg *node.Config)) *nodetest.T {
	t.Helper()
	return nodetest.Start(t, localcluster.Options{Nodes: n, Setup: setup})
}

// hsmNode is one node of an HSM test cluster: its own SoftHSM token (or
// soft file).
type hsmNode struct {
	label, pin, module string
}

// usePKCS11 gives cfg a fresh SoftHSM token of its own.
func usePKCS11(t testing.TB, cfg *node.Config) hsmNode {
	t.Helper()
	label, pin := nodetest.UsePKCS11(t, cfg)
	return hsmNode{label: label, pin: pin, module: cfg.HSM.ModulePath}
}

// hsmErrors sums meridian_hsm_errors_total over every label of n.
func hsmErrors(t testing.TB, n *node.Node) float64 {
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
func healthStatus(t testing.TB, n *node.Node) healthpb.HealthCheckResponse_ServingStatus {
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

func ctxT(t testing.TB) context.Context { return ctxFor(t, 30*time.Second) }

// ctxFor is a context that ends after d (or with the test).
func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustCreateKey(t testing.TB, cl *client.Client, req *apiv1.CreateKeyRequest) *apiv1.CreateKeyResponse {
	t.Helper()
	res, err := cl.CreateKey(ctxT(t), req)
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	return res
}

func maxProcs() int { return runtime.GOMAXPROCS(0) }
