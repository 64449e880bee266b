package transport

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/internal/testwait"
)

func withToken(ctx context.Context, values ...string) context.Context {
	for _, v := range values {
		ctx = metadata.AppendToOutgoingContext(ctx, ConsistencyTokenHeader, v)
	}
	return ctx
}

func encryptReq() *apiv1.EncryptRequest {
	return &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: []byte("x")}
}

// waitCounts reads meridian_consistency_waits_total by outcome and the
// wait histogram's sample count.
func waitCounts(h *harness) (immediate, waited, timeout float64, observed uint64) {
	var m dto.Metric
	_ = h.metrics.waitTime.Write(&m)
	return testutil.ToFloat64(h.metrics.waitByOutcome[waitImmediate]),
		testutil.ToFloat64(h.metrics.waitByOutcome[waitWaited]),
		testutil.ToFloat64(h.metrics.waitByOutcome[waitTimeout]),
		m.GetHistogram().GetSampleCount()
}

func appliedHeader(t *testing.T, md metadata.MD) string {
	t.Helper()
	v := md.Get(AppliedIndexHeader)
	if len(v) != 1 {
		t.Fatalf("%s header = %q, want one value", AppliedIndexHeader, v)
	}
	return v[0]
}

func TestConsistencyTokenAbsentNoWait(t *testing.T) {
	h := newHarness(t)
	var header metadata.MD
	if _, err := h.client.Encrypt(testCtx(t), encryptReq(), grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if got := appliedHeader(t, header); got != strconv.Itoa(harnessAppliedIndex) {
		t.Errorf("applied index header %q, want %d", got, harnessAppliedIndex)
	}
	if n := h.waiter.numCalls(); n != 0 {
		t.Errorf("WaitApplied called %d times without a token", n)
	}
	if i, w, to, obs := waitCounts(h); i+w+to != 0 || obs != 0 {
		t.Errorf("waits counted without a token: %v %v %v %d", i, w, to, obs)
	}
	// Token 0 means "no requirement", like an absent header.
	if _, err := h.client.Encrypt(withToken(testCtx(t), "0"), encryptReq()); err != nil {
		t.Fatal(err)
	}
	if i, w, to, _ := waitCounts(h); i+w+to != 0 {
		t.Errorf("token 0 counted as a wait")
	}
}

func TestConsistencyTokenAlreadyApplied(t *testing.T) {
	h := newHarness(t)
	for _, tok := range []string{"100", "5", "0099"} {
		if _, err := h.client.Encrypt(withToken(testCtx(t), tok), encryptReq()); err != nil {
			t.Fatalf("token %s: %v", tok, err)
		}
	}
	if n := h.waiter.numCalls(); n != 0 {
		t.Errorf("WaitApplied called %d times for applied tokens", n)
	}
	if i, w, to, obs := waitCounts(h); i != 3 || w != 0 || to != 0 || obs != 3 {
		t.Errorf("waits immediate=%v waited=%v timeout=%v observed=%d; want 3 0 0 3", i, w, to, obs)
	}
}

func TestConsistencyTokenWaitedThenServed(t *testing.T) {
	h := newHarness(t)
	type result struct {
		header metadata.MD
		err    error
	}
	done := make(chan result, 1)
	go func() {
		var header metadata.MD
		_, err := h.client.Encrypt(withToken(testCtx(t), "150"), encryptReq(), grpc.Header(&header))
		done <- result{header, err}
	}()
	testwait.Eventually(t, 5*time.Second, "the call to wait for index 150", func() bool { return h.waiter.blocked() == 1 })
	if n := h.store.numCalls(); n != 0 {
		t.Fatalf("store called %d times before the token was applied", n)
	}
	h.waiter.advance(150)
	r := <-done
	if r.err != nil {
		t.Fatalf("call after the index was applied: %v", r.err)
	}
	if got := appliedHeader(t, r.header); got != "150" {
		t.Errorf("applied index header %q, want 150", got)
	}
	if c, _ := h.store.lastCall(); c.op != "Encrypt" {
		t.Errorf("store got %q", c.op)
	}
	if i, w, to, obs := waitCounts(h); i != 0 || w != 1 || to != 0 || obs != 1 {
		t.Errorf("waits immediate=%v waited=%v timeout=%v observed=%d; want 0 1 0 1", i, w, to, obs)
	}
}

func TestConsistencyTokenNeverApplied(t *testing.T) {
	const maxWait = 200 * time.Millisecond
	h := newHarnessWith(t, WithConsistency(h0Waiter(), maxWait))
	var header metadata.MD
	start := time.Now()
	_, err := h.client.Decrypt(withToken(testCtx(t), "500"), &apiv1.DecryptRequest{CiphertextBlob: []byte("ct")}, grpc.Header(&header))
	elapsed := time.Since(start)
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable || ExceptionFromStatus(st) != "KMSUnavailableException" {
		t.Fatalf("got %v, want Unavailable KMSUnavailableException", err)
	}
	want := "node node-t has not caught up to consistency token 500 (applied 100); try another node"
	if st.Message() != want {
		t.Errorf("message %q, want %q", st.Message(), want)
	}
	if elapsed < maxWait || elapsed > maxWait+2*time.Second {
		t.Errorf("answered after %v, want about %v", elapsed, maxWait)
	}
	if n := h.store.numCalls(); n != 0 {
		t.Errorf("store called %d times", n)
	}
	// The refusal still tells the client how far this node got.
	if got := appliedHeader(t, header); got != "100" {
		t.Errorf("applied index header %q, want 100", got)
	}
	if i, w, to, obs := waitCounts(h); i != 0 || w != 0 || to != 1 || obs != 1 {
		t.Errorf("waits immediate=%v waited=%v timeout=%v observed=%d; want 0 0 1 1", i, w, to, obs)
	}
	if got := testutil.ToFloat64(h.metrics.requests.WithLabelValues("Decrypt", "KMSUnavailableException")); got != 1 {
		t.Errorf("requests{Decrypt,KMSUnavailableException} = %v", got)
	}
}

// h0Waiter is a waiter stuck at the harness's starting index.
func h0Waiter() *fakeWaiter { return newFakeWaiter(harnessAppliedIndex) }

// The wait never outlasts the caller's deadline, however long maxWait is.
func TestConsistencyWaitBoundedByDeadline(t *testing.T) {
	w := h0Waiter()
	h := newHarnessWith(t, WithConsistency(w, time.Minute))
	ctx, cancel := context.WithTimeout(withToken(context.Background(), "500"), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.client.Encrypt(ctx, encryptReq())
	// The server's wait ends with the propagated deadline, so its
	// Unavailable may beat the client's own DeadlineExceeded: both are fine.
	if c := status.Code(err); c != codes.DeadlineExceeded && c != codes.Unavailable {
		t.Fatalf("got %v, want DeadlineExceeded or Unavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %v", elapsed)
	}
	// The server side gives up too: it does not sit out the minute.
	testwait.Eventually(t, 5*time.Second, "the server to stop waiting", func() bool {
		_, _, to, _ := waitCounts(h)
		return to == 1 && w.blocked() == 0
	})
	if n := h.store.numCalls(); n != 0 {
		t.Errorf("store called %d times", n)
	}
}

// A caller that gives up while waiting frees the server at once.
func TestConsistencyWaitCanceled(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(withToken(testCtx(t), "500"))
	done := make(chan error, 1)
	go func() {
		_, err := h.client.Encrypt(ctx, encryptReq())
		done <- err
	}()
	testwait.Eventually(t, 5*time.Second, "the call to wait", func() bool { return h.waiter.blocked() == 1 })
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("got %v, want Canceled", err)
	}
	testwait.Eventually(t, 5*time.Second, "the server to stop waiting", func() bool { return h.waiter.blocked() == 0 })
}

func TestConsistencyTokenMalformed(t *testing.T) {
	h := newHarness(t)
	for _, values := range [][]string{{"abc"}, {"-1"}, {""}, {"1.5"}, {"0x10"}, {"18446744073709551616"}, {"5", "x"},
		{strings.Repeat("7", 300) + "z"}} {
		_, err := h.client.Encrypt(withToken(testCtx(t), values...), encryptReq())
		st, _ := status.FromError(err)
		if st.Code() != codes.InvalidArgument || ExceptionFromStatus(st) != "ValidationException" ||
			!strings.Contains(st.Message(), ConsistencyTokenHeader) {
			t.Errorf("token %q: got %v, want InvalidArgument ValidationException naming the header", values, err)
		}
		if len(st.Message()) > 200 {
			t.Errorf("token %q: message of %d bytes echoes too much", values, len(st.Message()))
		}
	}
	var header metadata.MD
	if _, err := h.client.Encrypt(withToken(testCtx(t), "bad"), encryptReq(), grpc.Header(&header)); err == nil {
		t.Fatal("malformed token accepted")
	}
	if got := appliedHeader(t, header); got != "100" {
		t.Errorf("applied index header on a refused call %q, want 100", got)
	}
	if n := h.store.numCalls(); n != 0 {
		t.Errorf("store called %d times", n)
	}
}

// With several well-formed values the highest is the requirement.
func TestConsistencyTokenHighestWins(t *testing.T) {
	w := newFakeWaiter(120)
	h := newHarnessWith(t, WithConsistency(w, 50*time.Millisecond))
	if _, err := h.client.Encrypt(withToken(testCtx(t), "90", "120"), encryptReq()); err != nil {
		t.Fatalf("tokens 90, 120 with 120 applied: %v", err)
	}
	_, err := h.client.Encrypt(withToken(testCtx(t), "90", "121"), encryptReq())
	if st, _ := status.FromError(err); !strings.Contains(st.Message(), "consistency token 121 (applied 120)") {
		t.Errorf("tokens 90, 121 with 120 applied: %v", err)
	}
}

// Only KeyManagement calls wait; Members answers a lagging node's caller at
// once (it is how the client finds a fresher node); other services ignore
// the header, even a malformed one.
func TestConsistencyOnlyForKeyManagement(t *testing.T) {
	h := newHarnessWith(t, WithConsistency(h0Waiter(), 10*time.Second))
	ctx := withToken(testCtx(t), "1000000")
	var header metadata.MD
	resp, err := h.client.Members(ctx, &apiv1.MembersRequest{}, grpc.Header(&header))
	if err != nil {
		t.Fatalf("Members with an unapplied token: %v", err)
	}
	if resp.GetAppliedIndex() != 77 || appliedHeader(t, header) != "100" {
		t.Errorf("Members: applied %d, header %q", resp.GetAppliedIndex(), header.Get(AppliedIndexHeader))
	}
	health := healthpb.NewHealthClient(h.conn)
	for _, tok := range []string{"1000000", "not-a-number"} {
		var hh metadata.MD
		if _, err := health.Check(withToken(testCtx(t), tok), &healthpb.HealthCheckRequest{}, grpc.Header(&hh)); err != nil {
			t.Errorf("health check with token %q: %v", tok, err)
		}
		if v := hh.Get(AppliedIndexHeader); len(v) != 0 {
			t.Errorf("health check got %s %q", AppliedIndexHeader, v)
		}
	}
	if i, w, to, obs := waitCounts(h); i+w+to != 0 || obs != 0 {
		t.Errorf("waits counted outside KeyManagement data calls: %v %v %v %d", i, w, to, obs)
	}
}

// Without WithConsistency there is nothing to wait on: a well-formed token
// passes, a malformed one is still refused, and no header is sent.
func TestConsistencyWithoutWaiter(t *testing.T) {
	h := newHarnessWith(t, WithConsistency(nil, 0))
	var header metadata.MD
	if _, err := h.client.Encrypt(withToken(testCtx(t), "1000000"), encryptReq(), grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if v := header.Get(AppliedIndexHeader); len(v) != 0 {
		t.Errorf("%s = %q without a waiter", AppliedIndexHeader, v)
	}
	_, err := h.client.Encrypt(withToken(testCtx(t), "nope"), encryptReq())
	if got := ExceptionOf(err); got != "ValidationException" {
		t.Errorf("malformed token without a waiter: %v", err)
	}
}

func TestParseConsistencyToken(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want uint64
	}{
		{nil, 0}, {[]string{"0"}, 0}, {[]string{"42"}, 42}, {[]string{"3", "9", "4"}, 9},
		{[]string{"18446744073709551615"}, 18446744073709551615},
	} {
		if got, err := parseConsistencyToken(tc.in); got != tc.want || err != nil {
			t.Errorf("%q -> %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	if _, err := parseConsistencyToken([]string{"1e3"}); err == nil {
		t.Errorf("1e3 accepted: %v", err)
	}
}
