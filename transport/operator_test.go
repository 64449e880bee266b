package transport

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/keystore"
)

func phases(ps []*apiv1.RotateDomainKeyProgress) map[apiv1.RotatePhase][]*apiv1.RotateDomainKeyProgress {
	out := map[apiv1.RotatePhase][]*apiv1.RotateDomainKeyProgress{}
	for _, p := range ps {
		out[p.GetPhase()] = append(out[p.GetPhase()], p)
	}
	return out
}

func wantCode(t *testing.T, err error, code codes.Code, contains ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("error %v: code %s, want %s", err, st.Code(), code)
	}
	for _, c := range contains {
		if !strings.Contains(st.Message(), c) {
			t.Errorf("message %q lacks %q", st.Message(), c)
		}
	}
}

func TestRotateDomainKeyAcrossCluster(t *testing.T) {
	c := newOpCluster(t, 3, map[uint32]int{1: 5})
	ps, err := c.rotate(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	by := phases(ps)
	if ps[0].GetPhase() != apiv1.RotatePhase_ROTATE_PHASE_ROTATE_HSM || ps[0].GetDomainKeyVersion() != 2 || ps[0].GetSkipped() {
		t.Fatalf("first progress %v, want ROTATE_HSM v2 not skipped", ps[0])
	}
	dist := by[apiv1.RotatePhase_ROTATE_PHASE_DISTRIBUTE]
	if len(dist) != 2 {
		t.Fatalf("%d DISTRIBUTE events, want 2: %v", len(dist), dist)
	}
	for _, d := range dist {
		if d.GetOutcome() != apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_OK || !slices.Equal(d.GetImportedVersions(), []uint32{2}) || d.GetApiAddr() == "" {
			t.Errorf("distribute %v, want OK importing [2]", d)
		}
	}
	rw := by[apiv1.RotatePhase_ROTATE_PHASE_REWRAP]
	if len(rw) < 2 || rw[0].GetDone() != 0 || rw[len(rw)-1].GetDone() != 5 || rw[len(rw)-1].GetTotal() != 5 {
		t.Fatalf("rewrap progress %v, want 0/5 ... 5/5", rw)
	}
	last := ps[len(ps)-1]
	if last.GetPhase() != apiv1.RotatePhase_ROTATE_PHASE_DONE || last.GetDomainKeyVersion() != 2 {
		t.Fatalf("last progress %v, want DONE v2", last)
	}
	for _, n := range c.nodes {
		if got := n.backend.versions(); !slices.Equal(got, []uint32{1, 2}) {
			t.Errorf("%s holds %v, want [1 2]", n.id, got)
		}
	}
	if got := c.replica.snapshot(); len(got) != 1 || got[2] != 5 {
		t.Fatalf("replica %v, want every key version under v2", got)
	}
	// The orchestrator was the source, once per member, and asked each
	// member over the cluster plane (the backend), never their API.
	if n := c.nodes[0].backend.called("ExportDomainKeys"); n != 2 {
		t.Errorf("orchestrator exported %d times, want 2", n)
	}
	if n := c.nodes[0].backend.called("SyncMember"); n != 2 {
		t.Errorf("orchestrator asked %d members to sync, want 2", n)
	}
	if got := testutil.ToFloat64(c.nodes[0].metrics.requests.WithLabelValues("meridian.v1.Operator/RotateDomainKey", "ok")); got != 1 {
		t.Errorf("rotate ok counter = %v, want 1", got)
	}

	// A second status reads the new state.
	st, err := c.client(2).DomainKeyStatus(testCtx(t), &apiv1.DomainKeyStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetNodeId() != "n3" || st.GetCurrentDomainKeyVersion() != 2 || st.GetPendingKeyVersions() != 0 || st.GetTotalKeyVersions() != 5 ||
		len(st.GetKeyVersions()) != 1 || st.GetKeyVersions()[0].GetDomainKeyVersion() != 2 || st.GetHsmBackend() != "fake" {
		t.Fatalf("status %v", st)
	}
}

func TestRotateDomainKeyMemberFailureStopsBeforeRewrap(t *testing.T) {
	c := newOpCluster(t, 3, map[uint32]int{1: 4})
	c.nodes[2].backend.importErr = errors.New("token removed")
	ps, err := c.rotate(testCtx(t), 0)
	wantCode(t, err, codes.Unavailable, "n3", c.nodes[2].addr, "nothing was re-wrapped", "run the rotation again")
	var failed, ok int
	for _, p := range phases(ps)[apiv1.RotatePhase_ROTATE_PHASE_DISTRIBUTE] {
		switch p.GetOutcome() {
		case apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_FAILED:
			failed++
			if p.GetNodeId() != "n3" || p.GetDetail() == "" {
				t.Errorf("failure event %v", p)
			}
			// n3's internal error text stays in n3's log.
			if strings.Contains(p.GetDetail(), "token removed") {
				t.Errorf("internal detail leaked: %q", p.GetDetail())
			}
		case apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_OK:
			ok++
		}
	}
	if failed != 1 || ok != 1 {
		t.Fatalf("failed=%d ok=%d, want 1 and 1", failed, ok)
	}
	if len(phases(ps)[apiv1.RotatePhase_ROTATE_PHASE_REWRAP]) != 0 || c.nodes[0].backend.called("RewrapDomainKey") != 0 {
		t.Fatal("re-wrap ran although a member lacks the new version")
	}
	if got := c.replica.snapshot(); got[1] != 4 {
		t.Fatalf("replica changed: %v", got)
	}

	// Fixed, the rotation resumes with the version already made.
	c.nodes[2].backend.mu.Lock()
	c.nodes[2].backend.importErr = nil
	c.nodes[2].backend.mu.Unlock()
	ps, err = c.rotate(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !ps[0].GetSkipped() || ps[0].GetDomainKeyVersion() != 2 {
		t.Fatalf("resume: first progress %v, want ROTATE_HSM v2 skipped", ps[0])
	}
	if c.nodes[0].backend.called("RotateHSMDomainKey") != 1 {
		t.Fatal("resume made another DK version")
	}
	if got := c.replica.snapshot(); got[2] != 4 || len(got) != 1 {
		t.Fatalf("replica %v after resume", got)
	}
}

func TestRotateDomainKeyUnreachableMemberChangesNothing(t *testing.T) {
	c := newOpCluster(t, 3, map[uint32]int{1: 2})
	c.nodes[1].stop() // still ALIVE in the view: gossip has not noticed
	_, err := c.rotate(testCtx(t), 0)
	wantCode(t, err, codes.FailedPrecondition, "nothing was changed", "n2", c.nodes[1].addr)
	if c.nodes[0].backend.called("RotateHSMDomainKey") != 0 {
		t.Fatal("a DK version was made although a member was unreachable")
	}
}

func TestRotateDomainKeySkipsDeadMembers(t *testing.T) {
	c := newOpCluster(t, 3, map[uint32]int{1: 1})
	c.nodes[2].stop()
	c.setStatus("n3", StatusDead)
	ps, err := c.rotate(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	var skipped *apiv1.RotateDomainKeyProgress
	for _, p := range phases(ps)[apiv1.RotatePhase_ROTATE_PHASE_DISTRIBUTE] {
		if p.GetOutcome() == apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_SKIPPED {
			skipped = p
		}
	}
	if skipped == nil || skipped.GetNodeId() != "n3" || !strings.Contains(skipped.GetDetail(), "sync") {
		t.Fatalf("no SKIPPED event for dead n3 saying how to catch up: %v", ps)
	}
	if ps[len(ps)-1].GetPhase() != apiv1.RotatePhase_ROTATE_PHASE_DONE {
		t.Fatalf("rotation did not finish: %v", ps)
	}
}

func TestRotateDomainKeyRefusals(t *testing.T) {
	t.Run("peer holds a newer version", func(t *testing.T) {
		c := newOpCluster(t, 2, map[uint32]int{1: 1})
		c.nodes[1].backend.held = []uint32{1, 2}
		_, err := c.rotate(testCtx(t), 0)
		wantCode(t, err, codes.FailedPrecondition, "n2", "holds domain key v2", "--addr "+c.nodes[1].addr)
		if c.nodes[0].backend.called("RotateHSMDomainKey") != 0 {
			t.Fatal("rotated anyway")
		}
	})
	t.Run("stored versions newer than this HSM", func(t *testing.T) {
		c := newOpCluster(t, 1, map[uint32]int{1: 1, 3: 1})
		_, err := c.rotate(testCtx(t), 0)
		wantCode(t, err, codes.FailedPrecondition, "wrapped under domain key v3", "holds only v1")
	})
	t.Run("no domain key", func(t *testing.T) {
		c := newOpCluster(t, 1, nil)
		c.nodes[0].backend.held = nil
		_, err := c.rotate(testCtx(t), 0)
		wantCode(t, err, codes.FailedPrecondition, "holds no domain key")
	})
	t.Run("hsm rotation fails", func(t *testing.T) {
		c := newOpCluster(t, 1, nil)
		c.nodes[0].backend.rotateErr = errors.Join(keystore.ErrUnavailable, errors.New("CKR_DEVICE_ERROR"))
		_, err := c.rotate(testCtx(t), 0)
		wantCode(t, err, codes.Unavailable)
		if strings.Contains(err.Error(), "CKR_DEVICE_ERROR") {
			t.Fatalf("internal detail in %v", err)
		}
	})
}

func TestRotateDomainKeyOneAtATime(t *testing.T) {
	c := newOpCluster(t, 1, map[uint32]int{1: 1})
	b := c.nodes[0].backend
	b.rewrapGate, b.rewrapIn = make(chan struct{}), make(chan struct{})
	ctx := testCtx(t)
	first := make(chan error, 1)
	go func() {
		_, err := c.rotate(ctx, 0)
		first <- err
	}()
	<-b.rewrapIn
	_, err := c.rotate(ctx, 0)
	wantCode(t, err, codes.FailedPrecondition, "already running")
	close(b.rewrapGate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

func TestRotateDomainKeyEchoesRequestID(t *testing.T) {
	c := newOpCluster(t, 1, nil)
	ctx := metadata.AppendToOutgoingContext(testCtx(t), RequestIDHeader, "op-rid-1")
	stream, err := c.client(0).RotateDomainKey(ctx, &apiv1.RotateDomainKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	md, err := stream.Header()
	if err != nil {
		t.Fatal(err)
	}
	if got := md.Get(RequestIDHeader); len(got) != 1 || got[0] != "op-rid-1" {
		t.Fatalf("request id header %v", got)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			break
		}
	}
}

func TestSyncDomainKeysSourceChecks(t *testing.T) {
	c := newOpCluster(t, 2, nil)
	cl := c.client(0)
	ctx := testCtx(t)
	for _, tc := range []struct {
		src  string
		code codes.Code
		want string
	}{
		{"", codes.InvalidArgument, "not host:port"},
		{"no-port", codes.InvalidArgument, "not host:port"},
		{"10.9.9.9:7400", codes.InvalidArgument, "not the API address of any member"},
		{c.nodes[0].addr, codes.InvalidArgument, "this node"},
	} {
		_, err := cl.SyncDomainKeys(ctx, &apiv1.SyncDomainKeysRequest{SourceApiAddr: tc.src})
		wantCode(t, err, tc.code, tc.want)
	}
	c.setStatus("n2", StatusLeft)
	_, err := cl.SyncDomainKeys(ctx, &apiv1.SyncDomainKeysRequest{SourceApiAddr: c.nodes[1].addr})
	wantCode(t, err, codes.FailedPrecondition, "LEFT")
	if c.nodes[0].backend.called("TransportPublicKey") != 0 {
		t.Fatal("a refused sync made a transport key")
	}
}

func TestSyncDomainKeys(t *testing.T) {
	c := newOpCluster(t, 2, nil)
	c.nodes[1].backend.held = []uint32{1, 2, 3}
	resp, err := c.client(0).SyncDomainKeys(testCtx(t), &apiv1.SyncDomainKeysRequest{SourceApiAddr: c.nodes[1].addr})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resp.GetImportedVersions(), []uint32{2, 3}) || !slices.Equal(resp.GetHsmDomainKeyVersions(), []uint32{1, 2, 3}) || resp.GetNodeId() != "n1" {
		t.Fatalf("sync response %v", resp)
	}
	// Holding everything, a second sync makes no transport key.
	resp, err = c.client(0).SyncDomainKeys(testCtx(t), &apiv1.SyncDomainKeysRequest{SourceApiAddr: c.nodes[1].addr})
	if err != nil || len(resp.GetImportedVersions()) != 0 {
		t.Fatalf("second sync imported %v, %v", resp.GetImportedVersions(), err)
	}
	if n := c.nodes[0].backend.called("TransportPublicKey"); n != 1 {
		t.Fatalf("TransportPublicKey called %d times, want 1", n)
	}
	// The source refusing to export is reported with its message.
	c.nodes[1].backend.held = []uint32{1, 2, 3, 4}
	c.nodes[1].backend.exportErr = errors.Join(keystore.ErrUnsupported, errors.New("this backend cannot enrol"))
	_, err = c.client(0).SyncDomainKeys(testCtx(t), &apiv1.SyncDomainKeysRequest{SourceApiAddr: c.nodes[1].addr})
	wantCode(t, err, codes.FailedPrecondition, "export from source n2", "cannot enrol")
	if ex := ExceptionOf(err); ex != "UnsupportedOperationException" {
		t.Errorf("exception %q, want the source's UnsupportedOperationException", ex)
	}
	// A member's internal failure is this call's dependency failure.
	c.nodes[1].backend.exportErr = errors.New("CKR_DEVICE_ERROR")
	_, err = c.client(0).SyncDomainKeys(testCtx(t), &apiv1.SyncDomainKeysRequest{SourceApiAddr: c.nodes[1].addr})
	wantCode(t, err, codes.Unavailable, "export from source n2")
	if strings.Contains(err.Error(), "CKR_DEVICE_ERROR") {
		t.Fatalf("internal detail in %v", err)
	}
}

// TestExportDomainKeysNotOnClientAPI: the DK export is a cluster-plane
// call (cluster's DomainKeys service); the client API no longer has it.
func TestExportDomainKeysNotOnClientAPI(t *testing.T) {
	c := newOpCluster(t, 1, nil)
	conn, err := grpc.NewClient(c.nodes[0].addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, method := range []string{"/meridian.v1.Operator/ExportDomainKeys", "/meridian.cluster.v1.DomainKeys/Export", "/meridian.cluster.v1.DomainKeys/Sync"} {
		err := conn.Invoke(testCtx(t), method, &emptypb.Empty{}, &emptypb.Empty{})
		wantCode(t, err, codes.Unimplemented)
	}
	if n := c.nodes[0].backend.called("ExportDomainKeys"); n != 0 {
		t.Fatalf("the HSM exported %d times", n)
	}
}

func TestHSMStatusRPC(t *testing.T) {
	c := newOpCluster(t, 1, nil)
	resp, err := c.client(0).HSMStatus(testCtx(t), &apiv1.HSMStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetNodeId() != "n1" || resp.GetBackend() != "fake" || !resp.GetHealthy() || !slices.Equal(resp.GetDomainKeyVersions(), []uint32{1}) ||
		len(resp.GetMechanisms()) != 2 || !resp.GetMechanisms()[0].GetRequired() || resp.GetMechanisms()[1].GetPresent() {
		t.Fatalf("HSMStatus %v", resp)
	}
}

func TestOperatorNotServedWithoutOption(t *testing.T) {
	h := newHarness(t)
	_, err := apiv1.NewOperatorClient(h.conn).HSMStatus(testCtx(t), &apiv1.HSMStatusRequest{})
	wantCode(t, err, codes.Unimplemented)
}
