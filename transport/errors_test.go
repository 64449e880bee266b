package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/keystore"
)

// secretDetail stands for internal detail that must never reach a caller.
const secretDetail = "hsm slot 3 pin-locked at /var/lib/hsm"

func TestErrorMappingOverTheWire(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		err       error
		code      codes.Code
		exception string
		showMsg   bool // the caller sees the store's message
	}{
		{keystore.ErrValidation, codes.InvalidArgument, "ValidationException", true},
		{keystore.ErrNotFound, codes.NotFound, "NotFoundException", true},
		{keystore.ErrAlreadyExists, codes.AlreadyExists, "AlreadyExistsException", true},
		{keystore.ErrDisabled, codes.FailedPrecondition, "DisabledException", true},
		{keystore.ErrInvalidState, codes.FailedPrecondition, "KMSInvalidStateException", true},
		{keystore.ErrInvalidCiphertext, codes.InvalidArgument, "InvalidCiphertextException", true},
		{keystore.ErrIncorrectKey, codes.InvalidArgument, "IncorrectKeyException", true},
		{keystore.ErrInvalidKeyUsage, codes.InvalidArgument, "InvalidKeyUsageException", true},
		{keystore.ErrInvalidSignature, codes.InvalidArgument, "KMSInvalidSignatureException", true},
		{keystore.ErrInvalidMac, codes.InvalidArgument, "KMSInvalidMacException", true},
		{keystore.ErrUnsupported, codes.FailedPrecondition, "UnsupportedOperationException", true},
		{keystore.ErrLimitExceeded, codes.ResourceExhausted, "LimitExceededException", true},
		{keystore.ErrUnavailable, codes.Unavailable, "KMSUnavailableException", false},
		{keystore.ErrInternal, codes.Internal, "KMSInternalException", false},
		{errors.New("some bug"), codes.Internal, "KMSInternalException", false},
		{context.DeadlineExceeded, codes.DeadlineExceeded, "DependencyTimeoutException", false},
		{context.Canceled, codes.Canceled, "RequestCanceledException", false},
		// An internal error also marked as a user error stays hidden.
		{errors.Join(keystore.ErrInternal, keystore.ErrValidation), codes.Internal, "KMSInternalException", false},
		// The node's HSM, as operator calls return its errors: down,
		// closed or without the domain key is Unavailable; other failures
		// are internal.
		{hsm.ErrUnavailable, codes.Unavailable, "KMSUnavailableException", false},
		{hsm.ErrClosed, codes.Unavailable, "KMSUnavailableException", false},
		{hsm.ErrNoDomainKey, codes.Unavailable, "KMSUnavailableException", false},
		{hsm.ErrHandleInvalid, codes.Internal, "KMSInternalException", false},
		{errors.Join(keystore.ErrInternal, hsm.ErrUnavailable), codes.Internal, "KMSInternalException", false},
		{errors.Join(hsm.ErrUnavailable, keystore.ErrValidation), codes.Unavailable, "KMSUnavailableException", false},
	}
	for _, tc := range cases {
		t.Run(tc.exception+"/"+tc.err.Error(), func(t *testing.T) {
			wrapped := fmt.Errorf("describe key k-9 (%s): %w", secretDetail, tc.err)
			h.store.set(func(f *fakeStore) { f.err = wrapped })
			rid := "req-" + tc.exception
			ctx := metadata.AppendToOutgoingContext(testCtx(t), RequestIDHeader, rid)
			var header metadata.MD
			_, err := h.client.DescribeKey(ctx, &apiv1.DescribeKeyRequest{KeyId: "k-9"}, grpc.Header(&header))
			st, _ := status.FromError(err)
			if st.Code() != tc.code {
				t.Fatalf("code %v, want %v (%v)", st.Code(), tc.code, err)
			}
			if got := ExceptionFromStatus(st); got != tc.exception {
				t.Errorf("exception %q, want %q", got, tc.exception)
			}
			if got := ExceptionOf(err); got != tc.exception {
				t.Errorf("ExceptionOf(received) %q, want %q", got, tc.exception)
			}
			if tc.showMsg {
				if st.Message() != wrapped.Error() {
					t.Errorf("message %q, want the store's %q", st.Message(), wrapped.Error())
				}
				return
			}
			if strings.Contains(st.Message(), secretDetail) || strings.Contains(st.Message(), "some bug") {
				t.Errorf("message leaks internal detail: %q", st.Message())
			}
			if !strings.Contains(st.Message(), rid) {
				t.Errorf("message %q lacks request id %q", st.Message(), rid)
			}
			if got := header.Get(RequestIDHeader); len(got) != 1 || got[0] != rid {
				t.Errorf("response header request id %v, want %q", got, rid)
			}
		})
	}
}

// Internal and unavailable errors are logged once, with their detail and
// request id, so an operator can find what the caller was not told.
func TestInternalErrorLoggedOnce(t *testing.T) {
	for _, sentinel := range []error{keystore.ErrInternal, keystore.ErrUnavailable, hsm.ErrUnavailable, errors.New("unclassified")} {
		h := newHarness(t)
		h.store.set(func(f *fakeStore) { f.err = fmt.Errorf("unwrap k-1 v2 (%s): %w", secretDetail, sentinel) })
		ctx := metadata.AppendToOutgoingContext(testCtx(t), RequestIDHeader, "rid-42")
		if _, err := h.client.DescribeKey(ctx, &apiv1.DescribeKeyRequest{KeyId: "k-1"}); err == nil {
			t.Fatal("DescribeKey succeeded")
		}
		var found int
		for _, line := range strings.Split(h.logs.String(), "\n") {
			if strings.Contains(line, `"msg":"request failed"`) {
				found++
				for _, want := range []string{secretDetail, `"request_id":"rid-42"`, `"operation":"DescribeKey"`} {
					if !strings.Contains(line, want) {
						t.Errorf("%v: log line lacks %s: %s", sentinel, want, line)
					}
				}
			}
		}
		if found != 1 {
			t.Errorf("%v: logged %d times, want once", sentinel, found)
		}
	}
}

func TestExceptionOf(t *testing.T) {
	withInfo, err := status.New(codes.NotFound, "x").WithDetails(&apiv1.ErrorInfo{Exception: "NotFoundException"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"sentinel", keystore.ErrDisabled, "DisabledException"},
		{"wrapped sentinel", fmt.Errorf("encrypt k-1: %w", keystore.ErrInvalidKeyUsage), "InvalidKeyUsageException"},
		{"deadline", fmt.Errorf("apply: %w", context.DeadlineExceeded), "DependencyTimeoutException"},
		{"status with ErrorInfo", withInfo.Err(), "NotFoundException"},
		{"status without ErrorInfo", status.Error(codes.ResourceExhausted, "too big"), "ResourceExhausted"},
		{"unknown", errors.New("boom"), "KMSInternalException"},
		{"mapped", toStatus(context.Background(), discardLogger(), "Op", keystore.ErrNotFound), "NotFoundException"},
	}
	for _, tc := range cases {
		if got := ExceptionOf(tc.err); got != tc.want {
			t.Errorf("%s: ExceptionOf = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Each class's exception name is the text of its keystore sentinel (a
// class's first), so the keystore's errors, logs and the wire agree on
// names.
func TestExceptionNamesMatchSentinels(t *testing.T) {
	for _, c := range errorClasses {
		first := c.sentinels[0]
		if errors.Is(first, context.DeadlineExceeded) || errors.Is(first, context.Canceled) {
			continue
		}
		if first.Error() != c.exception {
			t.Errorf("sentinel %q mapped to exception %q", first, c.exception)
		}
	}
}

// A status built here passes through a second mapping unchanged.
func TestToStatusIdempotent(t *testing.T) {
	first := toStatus(context.Background(), discardLogger(), "Op", keystore.ErrDisabled)
	if second := toStatus(context.Background(), discardLogger(), "Op", first); second != first {
		t.Errorf("re-mapping changed the status: %v -> %v", first, second)
	}
}
