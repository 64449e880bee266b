package client

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// Error is a failed call as the server (or gRPC itself) reported it.
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Exception is the AWS-style exception name from the api.ErrorInfo
	// detail, e.g. "NotFoundException"; empty when the server sent none
	// (transport failures, deadlines).
	Exception string
	// Message is the server's human-readable message.
	Message string
}

// Error formats as "<Exception>: <message>", using the code's name when there
// is no exception.
func (e *Error) Error() string {
	name := e.Exception
	if name == "" {
		name = e.Code.String()
	}
	if e.Message == "" {
		return name
	}
	return name + ": " + e.Message
}

// Is matches an Exception sentinel by name, and context.Canceled or
// context.DeadlineExceeded by code, so callers can test errors uniformly.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Exception:
		return e.Exception == string(t)
	case *Error:
		return t != nil && e.Code == t.Code && e.Exception == t.Exception
	}
	switch target {
	case context.Canceled:
		return e.Code == codes.Canceled
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	}
	return false
}

// Exception is an exception name usable as an errors.Is target:
// errors.Is(err, client.NotFound).
type Exception string

// Error returns the exception name.
func (x Exception) Error() string { return string(x) }

// The exception names the server sends (see api.ErrorInfo). Names not listed
// here still work as targets: errors.Is(err, client.Exception("XException")).
const (
	NotFound          Exception = "NotFoundException"
	AlreadyExists     Exception = "AlreadyExistsException"
	Disabled          Exception = "DisabledException"
	InvalidState      Exception = "KMSInvalidStateException"
	InvalidCiphertext Exception = "InvalidCiphertextException"
	Validation        Exception = "ValidationException"
	Internal          Exception = "KMSInternalException"
	DependencyTimeout Exception = "DependencyTimeoutException"
	InvalidSignature  Exception = "KMSInvalidSignatureException"
	InvalidMac        Exception = "KMSInvalidMacException"
	Unavailable       Exception = "KMSUnavailableException"
	Canceled          Exception = "RequestCanceledException"
	Unsupported       Exception = "UnsupportedOperationException"
	LimitExceeded     Exception = "LimitExceededException"
	IncorrectKey      Exception = "IncorrectKeyException"
	InvalidKeyUsage   Exception = "InvalidKeyUsageException"
)

// IsNotFound reports whether err is a NotFoundException.
func IsNotFound(err error) bool { return errors.Is(err, NotFound) }

// IsDisabled reports whether err is a DisabledException.
func IsDisabled(err error) bool { return errors.Is(err, Disabled) }

// IsInvalidState reports whether err is a KMSInvalidStateException.
func IsInvalidState(err error) bool { return errors.Is(err, InvalidState) }

// IsInvalidCiphertext reports whether err is an InvalidCiphertextException.
func IsInvalidCiphertext(err error) bool { return errors.Is(err, InvalidCiphertext) }

// IsValidation reports whether err is a ValidationException.
func IsValidation(err error) bool { return errors.Is(err, Validation) }

// IsUnavailable reports whether err carries gRPC code Unavailable.
func IsUnavailable(err error) bool { return CodeOf(err) == codes.Unavailable }

// CodeOf returns err's gRPC code: OK for nil, Unknown for non-gRPC errors.
func CodeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return codes.Unknown
}

// ExceptionOf returns err's exception name, or "" when it has none.
func ExceptionOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Exception
	}
	return ""
}

// fromStatus converts a gRPC error into *Error; any other error (never
// produced by generated stubs, but kept total) becomes Unknown.
func fromStatus(err error) *Error {
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Code: codes.Unknown, Message: err.Error()}
	}
	e := &Error{Code: st.Code(), Message: st.Message()}
	for _, d := range st.Details() {
		if info, ok := d.(*apiv1.ErrorInfo); ok {
			e.Exception = info.GetException()
			break
		}
	}
	return e
}

// http1Marker is how gRPC (through x/net/http2) reports a peer that
// answered the HTTP/2 preface in HTTP/1.1.
const http1Marker = "looked like an HTTP/1.1 header"

// IsNotGRPC reports whether err says the address answered in HTTP/1.1
// rather than gRPC: ErrNotGRPC from New, or the status gRPC itself returns
// for a call over such a connection.
func IsNotGRPC(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNotGRPC) {
		return true
	}
	if st, ok := status.FromError(err); ok {
		return strings.Contains(st.Message(), http1Marker)
	}
	return strings.Contains(err.Error(), http1Marker)
}
