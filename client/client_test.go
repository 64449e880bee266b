package client

import (
	"context"
	"crypto/tls"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/internal/fakekms"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// startFake serves a lone fake node with faults until the test ends.
func startFake(t *testing.T, faults fakekms.Faults) *fakekms.Server {
	t.Helper()
	return fakekms.Start(t, fakekms.Config{Faults: faults})
}

// newTestClient connects to addrs with fast retries; mod adjusts the config.
func newTestClient(t testing.TB, mod func(*Config), addrs ...string) *Client {
	t.Helper()
	cfg := DefaultConfig(addrs...)
	cfg.Insecure = true
	cfg.BackoffBase = time.Millisecond
	cfg.BackoffMax = 5 * time.Millisecond
	cfg.DialTimeout = 5 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestWriteSetsAndReusesRequestIDAcrossRetries(t *testing.T) {
	f := startFake(t, fakekms.Faults{Unavailable: 2})
	c := newTestClient(t, nil, f.Addr())

	req := &apiv1.CreateKeyRequest{Description: "orders"}
	var info CallInfo
	resp, err := c.CreateKey(WithCallInfo(context.Background(), &info), req)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	ids := f.RequestIDs()
	if len(ids) != 3 {
		t.Fatalf("server saw %d attempts, want 3", len(ids))
	}
	if !uuidRE.MatchString(ids[0]) {
		t.Fatalf("request id %q is not a v4 UUID", ids[0])
	}
	for i, id := range ids {
		if id != ids[0] {
			t.Fatalf("attempt %d sent request id %q, first sent %q", i+1, id, ids[0])
		}
	}
	if info.Attempts != 3 || info.RequestID != ids[0] {
		t.Fatalf("CallInfo = %+v, want 3 attempts with id %q", info, ids[0])
	}
	if req.RequestId != "" {
		t.Fatalf("caller's request was modified: request_id %q", req.RequestId)
	}
	if resp.GetKeyMetadata().GetDescription() != "orders" {
		t.Fatalf("response %v lost the description", resp)
	}

	// A second, separate call gets a fresh id even from the same request value.
	if _, err := c.CreateKey(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	ids = f.RequestIDs()
	if ids[3] == ids[0] || !uuidRE.MatchString(ids[3]) {
		t.Fatalf("second call reused id %q", ids[3])
	}
}

func TestCallerChosenRequestIDIsKept(t *testing.T) {
	f := startFake(t, fakekms.Faults{Unavailable: 1})
	c := newTestClient(t, nil, f.Addr())
	if _, err := c.EnableKey(context.Background(), &apiv1.EnableKeyRequest{KeyId: "k", RequestId: "mine-123"}); err != nil {
		t.Fatal(err)
	}
	if ids := f.RequestIDs(); !reflect.DeepEqual(ids, []string{"mine-123", "mine-123"}) {
		t.Fatalf("ids = %q", ids)
	}
}

// A write applied by the server whose reply was lost must not be applied
// twice when the client retries.
func TestAmbiguousCreateKeyRetryMakesOneKey(t *testing.T) {
	f := startFake(t, fakekms.Faults{AfterApply: 2})
	c := newTestClient(t, nil, f.Addr())
	resp, err := c.CreateKey(context.Background(), &apiv1.CreateKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Cluster().Keys(); n != 1 {
		t.Fatalf("server holds %d keys after retries, want 1", n)
	}
	if resp.GetKeyMetadata().GetKeyId() == "" {
		t.Fatal("no key id in response")
	}
}

func TestRetriesStopAtBound(t *testing.T) {
	for _, attempts := range []int{1, 3, 5} {
		f := startFake(t, fakekms.Faults{Unavailable: 100})
		c := newTestClient(t, func(cfg *Config) { cfg.MaxAttempts = attempts }, f.Addr())
		var info CallInfo
		_, err := c.ListKeys(WithCallInfo(context.Background(), &info), nil)
		if !IsUnavailable(err) {
			t.Fatalf("attempts=%d: err = %v, want Unavailable", attempts, err)
		}
		if calls := f.Calls(); len(calls) != attempts || info.Attempts != attempts {
			t.Fatalf("attempts=%d: server saw %d calls, CallInfo %d", attempts, len(calls), info.Attempts)
		}
	}
}

func TestOnlyUnavailableIsRetried(t *testing.T) {
	for _, code := range []codes.Code{codes.NotFound, codes.FailedPrecondition, codes.Internal, codes.InvalidArgument} {
		f := startFake(t, fakekms.Faults{Err: status.Error(code, "no")})
		c := newTestClient(t, nil, f.Addr())
		_, err := c.DescribeKey(context.Background(), &apiv1.DescribeKeyRequest{KeyId: "k"})
		if CodeOf(err) != code {
			t.Fatalf("code = %v, want %v", CodeOf(err), code)
		}
		if calls := f.Calls(); len(calls) != 1 {
			t.Fatalf("%v was retried: %d calls", code, len(calls))
		}
	}
}

func withInfo(t *testing.T, code codes.Code, msg, exception string) error {
	t.Helper()
	st, err := status.New(code, msg).WithDetails(&apiv1.ErrorInfo{Exception: exception})
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

func TestErrorsDecode(t *testing.T) {
	tests := []struct {
		name      string
		serverErr error
		code      codes.Code
		exception string
		message   string
		text      string
		is        error
	}{
		{"not found", withInfo(t, codes.NotFound, "key k-1 not found", "NotFoundException"),
			codes.NotFound, "NotFoundException", "key k-1 not found", "NotFoundException: key k-1 not found", NotFound},
		{"disabled", withInfo(t, codes.FailedPrecondition, "key k-1 is disabled", "DisabledException"),
			codes.FailedPrecondition, "DisabledException", "key k-1 is disabled", "DisabledException: key k-1 is disabled", Disabled},
		{"invalid ciphertext", withInfo(t, codes.InvalidArgument, "", "InvalidCiphertextException"),
			codes.InvalidArgument, "InvalidCiphertextException", "", "InvalidCiphertextException", InvalidCiphertext},
		{"no detail", status.Error(codes.ResourceExhausted, "slow down"),
			codes.ResourceExhausted, "", "slow down", "ResourceExhausted: slow down", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, nil, startFake(t, fakekms.Faults{Err: tt.serverErr}).Addr())
			_, err := c.Encrypt(context.Background(), &apiv1.EncryptRequest{KeyId: "k-1", Plaintext: []byte("x")})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err %T %v is not *Error", err, err)
			}
			if e.Code != tt.code || e.Exception != tt.exception || e.Message != tt.message {
				t.Fatalf("got %+v, want code %v exception %q message %q", e, tt.code, tt.exception, tt.message)
			}
			if e.Error() != tt.text {
				t.Fatalf("Error() = %q, want %q", e.Error(), tt.text)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("errors.Is(err, %v) = false", tt.is)
			}
			if errors.Is(err, Validation) {
				t.Fatal("matched an unrelated exception")
			}
			if ExceptionOf(err) != tt.exception {
				t.Fatalf("ExceptionOf = %q", ExceptionOf(err))
			}
		})
	}
}

func TestIsHelpers(t *testing.T) {
	err := error(&Error{Code: codes.NotFound, Exception: string(NotFound)})
	wrapped := errors.Join(errors.New("context"), err)
	if !IsNotFound(wrapped) || IsDisabled(wrapped) || IsInvalidState(wrapped) || IsValidation(wrapped) || IsInvalidCiphertext(wrapped) {
		t.Fatal("Is helpers disagree with the exception")
	}
	if !errors.Is(err, &Error{Code: codes.NotFound, Exception: "NotFoundException"}) {
		t.Fatal("errors.Is by *Error value failed")
	}
	if CodeOf(nil) != codes.OK || CodeOf(errors.New("x")) != codes.Unknown {
		t.Fatal("CodeOf for nil / foreign errors")
	}
}

func TestLastCommitIndexTracksMax(t *testing.T) {
	f := startFake(t, fakekms.Faults{})
	f.Cluster().QueueCommits(5, 3, 9, 7)
	c := newTestClient(t, nil, f.Addr())
	want := []uint64{5, 5, 9, 9}
	for i, w := range want {
		if _, err := c.EnableKey(context.Background(), &apiv1.EnableKeyRequest{KeyId: "k"}); err != nil {
			t.Fatal(err)
		}
		if got := c.LastCommitIndex(); got != w {
			t.Fatalf("after write %d: LastCommitIndex = %d, want %d", i+1, got, w)
		}
	}
	// Reads never move it.
	if _, err := c.ListKeys(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if c.LastCommitIndex() != 9 {
		t.Fatalf("read changed LastCommitIndex to %d", c.LastCommitIndex())
	}
}

func TestLastCommitIndexConcurrentWrites(t *testing.T) {
	c := newTestClient(t, nil, startFake(t, fakekms.Faults{}).Addr())
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.CreateKey(context.Background(), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := c.LastCommitIndex(); got != 20 {
		t.Fatalf("LastCommitIndex = %d, want 20 (the max)", got)
	}
}

func TestCancelStopsRetries(t *testing.T) {
	started := make(chan string, 100)
	f := fakekms.Start(t, fakekms.Config{Started: started, Faults: fakekms.Faults{Unavailable: 100}})
	c := newTestClient(t, func(cfg *Config) {
		cfg.MaxAttempts = 100
		cfg.BackoffBase = time.Minute // the retry would wait a minute
		cfg.BackoffMax = time.Minute
	}, f.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	start := time.Now()
	_, err := c.CreateKey(ctx, &apiv1.CreateKeyRequest{})
	if !errors.Is(err, context.Canceled) || CodeOf(err) != codes.Canceled {
		t.Fatalf("err = %v, want Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancel took %v to stop retries", d)
	}
	if calls := f.Calls(); len(calls) != 1 {
		t.Fatalf("%d attempts after cancel, want 1", len(calls))
	}
}

// A deadline that expires during the backoff ends the call at once and the
// error still says what the last attempt met.
func TestDeadlineDuringBackoff(t *testing.T) {
	f := startFake(t, fakekms.Faults{Unavailable: 100})
	c := newTestClient(t, func(cfg *Config) {
		cfg.MaxAttempts = 100
		cfg.BackoffBase = time.Minute
		cfg.BackoffMax = time.Minute
	}, f.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := c.Sign(ctx, &apiv1.SignRequest{KeyId: "k"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "injected") || !strings.Contains(err.Error(), "after 1 attempts") {
		t.Fatalf("error %q hides the last server error", err)
	}
	if calls := f.Calls(); len(calls) != 1 {
		t.Fatalf("%d attempts, want 1", len(calls))
	}
}

func TestCallTimeoutAppliesWithoutDeadline(t *testing.T) {
	f := startFake(t, fakekms.Faults{Block: true})
	c := newTestClient(t, func(cfg *Config) { cfg.CallTimeout = 50 * time.Millisecond }, f.Addr())
	_, err := c.GenerateRandom(context.Background(), &apiv1.GenerateRandomRequest{NumberOfBytes: 8})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

func TestCallInfoNamesServingNode(t *testing.T) {
	addr := startFake(t, fakekms.Faults{}).Addr()
	c := newTestClient(t, nil, fakekms.ClosedAddr(t), addr)
	if c.Addr() != addr {
		t.Fatalf("client picked %s, want the reachable %s", c.Addr(), addr)
	}
	var info CallInfo
	if _, err := c.ListKeys(WithCallInfo(context.Background(), &info), nil); err != nil {
		t.Fatal(err)
	}
	if info.Addr != addr || info.Peer == nil || info.Peer.String() != addr || info.Attempts != 1 {
		t.Fatalf("CallInfo = %+v, want served by %s", info, addr)
	}
	if got := info.Header.Get(fakekms.NodeHeader); len(got) != 1 || got[0] != fakekms.DefaultID {
		t.Fatalf("header meridian-node = %q", got)
	}
	if info.RequestID != "" {
		t.Fatalf("read carried request id %q", info.RequestID)
	}
}

func TestNewFailsWhenNothingReachable(t *testing.T) {
	cfg := DefaultConfig(fakekms.ClosedAddr(t), fakekms.ClosedAddr(t))
	cfg.Insecure = true
	cfg.DialTimeout = 2 * time.Second
	_, err := New(context.Background(), cfg)
	if !errors.Is(err, ErrNoReachableNode) {
		t.Fatalf("err = %v, want ErrNoReachableNode", err)
	}
}

func TestConfigValidate(t *testing.T) {
	base := DefaultConfig("127.0.0.1:1")
	base.Insecure = true
	tests := []struct {
		name string
		mod  func(*Config)
		want error
	}{
		{"ok", func(*Config) {}, nil},
		{"no addrs", func(c *Config) { c.Addrs = nil }, ErrNoAddrs},
		{"plaintext not asked for", func(c *Config) { c.Insecure = false }, ErrNoTransportSecurity},
		{"tls and insecure", func(c *Config) { c.TLS = new(tls.Config) }, ErrConflictingSecurity},
	}
	for _, tt := range tests {
		cfg := base
		tt.mod(&cfg)
		if err := cfg.Validate(); !errors.Is(err, tt.want) {
			t.Errorf("%s: Validate = %v, want %v", tt.name, err, tt.want)
		}
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.MaxAttempts = 0 },
		func(c *Config) { c.DialTimeout = 0 },
		func(c *Config) { c.BackoffMax = c.BackoffBase - 1 },
		func(c *Config) { c.Addrs = []string{""} },
	} {
		cfg := base
		bad(&cfg)
		if cfg.Validate() == nil {
			t.Errorf("Validate accepted %+v", cfg)
		}
	}
	if _, err := New(context.Background(), Config{Addrs: []string{"x"}}); !errors.Is(err, ErrNoTransportSecurity) {
		t.Fatalf("New without security choice: %v", err)
	}
}

func TestClosedClientRefusesCalls(t *testing.T) {
	c := newTestClient(t, nil, startFake(t, fakekms.Faults{}).Addr())
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListKeys(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Every Client method reaches the RPC of the same name, and exactly the
// requests with a request_id field get one.
func TestEveryMethodRoutesAndWritesCarryIDs(t *testing.T) {
	f := startFake(t, fakekms.Faults{})
	f.RecordMembers(true)
	c := newTestClient(t, nil, f.Addr())
	ct := reflect.TypeOf(c)
	ctxT := reflect.TypeOf((*context.Context)(nil)).Elem()
	n := 0
	for i := range ct.NumMethod() {
		m := ct.Method(i)
		if m.Type.NumIn() != 3 || m.Type.In(1) != ctxT {
			continue
		}
		n++
		reqT := m.Type.In(2).Elem()
		out := m.Func.Call([]reflect.Value{reflect.ValueOf(c), reflect.ValueOf(context.Background()), reflect.New(reqT)})
		_ = out // an empty request may be refused; only the routing counts here
		last := f.Last(t)
		if last.Method != m.Name {
			t.Errorf("%s called RPC %s", m.Name, last.Method)
		}
		_, hasID := reqT.FieldByName("RequestId")
		if id := last.RequestID; hasID != (id != "") {
			t.Errorf("%s: request id %q (request has the field: %v)", m.Name, id, hasID)
		}
	}
	if want := len(apiv1.KeyManagement_ServiceDesc.Methods); n != want {
		t.Fatalf("client has %d RPC methods, service has %d", n, want)
	}
}
