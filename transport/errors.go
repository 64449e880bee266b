package transport

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/keystore"
)

// This file is the one place where errors become gRPC statuses. Every failed
// KeyManagement call carries exactly one detail, a meridian.v1.ErrorInfo whose
// exception field holds the AWS-style exception name; clients read it from
// status.Details() (see DESIGN.md for the format).

// exposure says how much of an error's text the caller may see.
type exposure int

const (
	// exposeMessage: a user error; its message was written for the caller.
	exposeMessage exposure = iota
	// exposeFixed: the caller gets a short fixed text; the detail is logged.
	exposeFixed
	// exposeNothing: an internal error; the caller gets a generic text and a
	// request id, the detail goes to the log only.
	exposeNothing
)

type errorClass struct {
	sentinels []error // the class matches an error that wraps any of them
	code      codes.Code
	exception string
	expose    exposure
	fixedMsg  string // for exposeFixed
	// callerMessage: a keystore refusal explained for the caller (no
	// quorum, a stale node, an HSM without the domain key) shows its
	// explanation instead of fixedMsg.
	callerMessage bool
	logLevel      slog.Level
	logIt         bool
}

// errorClasses is matched in order with errors.Is, so an error that wraps
// several sentinels takes the first row. Context errors come first (they are
// the truest explanation), then the hidden internal classes, so that an
// internal detail can never ride out on a user error's message.
//
// Errors arrive here from the keystore (its sentinels), and from the node's
// other backends as their own errors: the HSM's (operator calls) and the
// membership view's (errMembership, members.go). A device that is down or
// closed, or that lacks the domain key, is Unavailable like the keystore's
// ErrUnavailable: another node may serve. Anything unmatched is internal.
//
// Signature and MAC mismatches are InvalidArgument, not FailedPrecondition:
// the argument (signature, MAC) is what is wrong, and no change of server
// state would make the same call succeed. UnsupportedOperation is
// FailedPrecondition, not Unimplemented: the RPC exists; it is the named key
// (its spec or origin) that does not support it, and clients treat
// Unimplemented as "this server lacks the method" (version skew).
var errorClasses = []errorClass{
	{sentinels: []error{context.DeadlineExceeded}, code: codes.DeadlineExceeded, exception: "DependencyTimeoutException", expose: exposeFixed, fixedMsg: "request deadline exceeded"},
	{sentinels: []error{context.Canceled}, code: codes.Canceled, exception: "RequestCanceledException", expose: exposeFixed, fixedMsg: "request canceled"},
	{sentinels: []error{keystore.ErrInternal}, code: codes.Internal, exception: "KMSInternalException", expose: exposeNothing, logLevel: slog.LevelError, logIt: true},
	{sentinels: []error{keystore.ErrUnavailable, hsm.ErrUnavailable, hsm.ErrClosed, hsm.ErrNoDomainKey, errMembership},
		code: codes.Unavailable, exception: "KMSUnavailableException", expose: exposeFixed, fixedMsg: "node temporarily unavailable; retry, possibly on another node",
		callerMessage: true, logLevel: slog.LevelWarn, logIt: true},
	{sentinels: []error{keystore.ErrValidation}, code: codes.InvalidArgument, exception: "ValidationException"},
	{sentinels: []error{keystore.ErrNotFound}, code: codes.NotFound, exception: "NotFoundException"},
	{sentinels: []error{keystore.ErrAlreadyExists}, code: codes.AlreadyExists, exception: "AlreadyExistsException"},
	{sentinels: []error{keystore.ErrDisabled}, code: codes.FailedPrecondition, exception: "DisabledException"},
	{sentinels: []error{keystore.ErrInvalidState}, code: codes.FailedPrecondition, exception: "KMSInvalidStateException"},
	{sentinels: []error{keystore.ErrInvalidCiphertext}, code: codes.InvalidArgument, exception: "InvalidCiphertextException"},
	{sentinels: []error{keystore.ErrIncorrectKey}, code: codes.InvalidArgument, exception: "IncorrectKeyException"},
	{sentinels: []error{keystore.ErrInvalidKeyUsage}, code: codes.InvalidArgument, exception: "InvalidKeyUsageException"},
	{sentinels: []error{keystore.ErrInvalidSignature}, code: codes.InvalidArgument, exception: "KMSInvalidSignatureException"},
	{sentinels: []error{keystore.ErrInvalidMac}, code: codes.InvalidArgument, exception: "KMSInvalidMacException"},
	{sentinels: []error{keystore.ErrUnsupported}, code: codes.FailedPrecondition, exception: "UnsupportedOperationException"},
	{sentinels: []error{keystore.ErrLimitExceeded}, code: codes.ResourceExhausted, exception: "LimitExceededException"},
}

// unknownClass is for errors that match no sentinel: a bug, so internal.
var unknownClass = errorClass{code: codes.Internal, exception: "KMSInternalException", expose: exposeNothing, logLevel: slog.LevelError, logIt: true}

func classify(err error) errorClass {
	for _, c := range errorClasses {
		for _, s := range c.sentinels {
			if errors.Is(err, s) {
				return c
			}
		}
	}
	return unknownClass
}

// statusError is the error handlers hand to gRPC: gRPC reads its status
// through GRPCStatus, and the metrics read its exception without decoding
// the detail again.
type statusError struct {
	st        *status.Status
	exception string
}

func (e *statusError) Error() string              { return e.st.Err().Error() }
func (e *statusError) GRPCStatus() *status.Status { return e.st }

func newStatusError(code codes.Code, msg, exception string) *statusError {
	st := status.New(code, msg)
	if withInfo, err := st.WithDetails(&apiv1.ErrorInfo{Exception: exception}); err == nil {
		st = withInfo
	}
	return &statusError{st: st, exception: exception}
}

// internalStatus is what a caller sees for any internal failure: nothing but
// a request id to quote to an operator.
func internalStatus(requestID string) *statusError {
	return newStatusError(codes.Internal, "internal error; see server logs, request id "+requestID, unknownClass.exception)
}

// toStatus maps err to the status the caller receives and logs, once, the
// detail of the errors whose text the caller does not see.
func toStatus(ctx context.Context, log *slog.Logger, op string, err error) *statusError {
	var already *statusError
	if errors.As(err, &already) {
		return already
	}
	c := classify(err)
	rid := RequestIDFromContext(ctx)
	if c.logIt {
		log.LogAttrs(ctx, c.logLevel, "request failed",
			slog.String("operation", op),
			slog.String("request_id", rid),
			slog.String("exception", c.exception),
			slog.String("err", err.Error()))
	}
	switch c.expose {
	case exposeMessage:
		return newStatusError(c.code, err.Error(), c.exception)
	case exposeFixed:
		if msg, ok := keystore.CallerMessage(err); ok && c.callerMessage {
			return newStatusError(c.code, msg+" (request id "+rid+")", c.exception)
		}
		return newStatusError(c.code, c.fixedMsg+" (request id "+rid+")", c.exception)
	default:
		return internalStatus(rid)
	}
}

// ExceptionOf names the exception err stands for: the ErrorInfo exception of
// a status built here or received from a Meridian server, the class of a
// keystore or context error, "KMSInternalException" for anything unknown, and
// "" for nil. For a gRPC status without ErrorInfo (one made by gRPC itself,
// or by another service on the same server) it is the code's name, e.g.
// "ResourceExhausted".
func ExceptionOf(err error) string {
	if err == nil {
		return ""
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.exception
	}
	if st, ok := status.FromError(err); ok {
		if ex := ExceptionFromStatus(st); ex != "" {
			return ex
		}
		return st.Code().String()
	}
	return classify(err).exception
}

// ExceptionFromStatus returns the exception name carried by st's ErrorInfo
// detail, or "" if it has none.
func ExceptionFromStatus(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*apiv1.ErrorInfo); ok {
			return info.GetException()
		}
	}
	return ""
}
