package history

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/meridiankms/meridian/client"
)

// Sentinel errors of the Recorder.
var (
	// ErrBadHandle: Complete was given a handle this Recorder never issued.
	ErrBadHandle = errors.New("history: unknown handle")
	// ErrCompleted: Complete was called twice for one op.
	ErrCompleted = errors.New("history: op already completed")
)

// Handle names an invoked op until it completes.
type Handle int

// Recorder collects ops from many concurrent clients. The zero value is not
// usable; use NewRecorder.
type Recorder struct {
	start time.Time // carries the monotonic reading every offset is taken from
	mu    sync.Mutex
	ops   []Op
}

// NewRecorder starts a history now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now is the current offset from the history's start.
func (r *Recorder) Now() time.Duration { return time.Since(r.start) }

// Offset converts a wall time taken in this process (with its monotonic
// reading) into a history offset, e.g. to log a fault on the same timeline.
func (r *Recorder) Offset(t time.Time) time.Duration { return t.Sub(r.start) }

// Invoke records the start of a call and returns its handle.
func (r *Recorder) Invoke(clientID int, kind Kind, keyID string, in Input) Handle {
	now := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	idx := len(r.ops)
	r.ops = append(r.ops, Op{Index: idx, Client: clientID, Kind: kind, KeyID: keyID, Input: in, Invoke: now})
	return Handle(idx)
}

// Complete records a call's answer: out as the caller saw it and err as the
// client returned it. The outcome follows Classify; out.Error is filled in
// from err when empty.
func (r *Recorder) Complete(h Handle, out Output, err error) error {
	now := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if int(h) < 0 || int(h) >= len(r.ops) {
		return fmt.Errorf("complete op %d: %w", h, ErrBadHandle)
	}
	op := &r.ops[h]
	if op.Outcome != Pending {
		return fmt.Errorf("complete op %d (%s): %w", h, op.Kind, ErrCompleted)
	}
	if err != nil && out.Error == "" {
		out.Error = ErrorName(err)
	}
	op.Output, op.Complete, op.Outcome = out, now, Classify(op.Kind, err)
	return nil
}

// History returns a copy of everything recorded so far. Ops still pending
// are closed as if their client had given up now: a write becomes Unknown,
// a read Failed (it observed nothing).
func (r *Recorder) History() *History {
	end := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	h := &History{Start: r.start, End: end, Ops: make([]Op, len(r.ops))}
	copy(h.Ops, r.ops)
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Outcome != Pending {
			continue
		}
		op.Complete, op.Output.Error = end, "Pending"
		op.Outcome = Failed
		if op.Kind.IsWrite() {
			op.Outcome = Unknown
		}
	}
	return h
}

// Classify says what an error tells the caller about a call's effect. A
// read (anything but a write) has no effect, so any error means Failed. A
// write failed definitely only when the server refused it for a reason it
// decides before or while applying without changing state (bad input, wrong
// state, not found); a timeout, Unavailable, a cancelled call, a lost
// connection or an internal error may come after the write was proposed and
// so leaves it Unknown.
func Classify(kind Kind, err error) Outcome {
	if err == nil {
		return Ok
	}
	if !kind.IsWrite() {
		return Failed
	}
	switch client.Exception(client.ExceptionOf(err)) {
	case client.Validation, client.NotFound, client.AlreadyExists, client.Disabled,
		client.InvalidState, client.InvalidCiphertext, client.IncorrectKey,
		client.InvalidKeyUsage, client.InvalidSignature, client.InvalidMac,
		client.Unsupported, client.LimitExceeded:
		return Failed
	case "":
	default:
		// Unavailable, Internal, DependencyTimeout, Canceled and names we
		// do not know: assume the worst.
		return Unknown
	}
	switch client.CodeOf(err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition,
		codes.PermissionDenied, codes.Unauthenticated, codes.OutOfRange, codes.Unimplemented:
		return Failed
	}
	return Unknown
}

// ErrorName is the name recorded for err: its exception, else its gRPC code
// name ("Unavailable", "DeadlineExceeded"), else "Unknown".
func ErrorName(err error) string {
	if err == nil {
		return ""
	}
	if x := client.ExceptionOf(err); x != "" {
		return x
	}
	var e *client.Error
	if errors.As(err, &e) {
		return e.Code.String()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded.String()
	case errors.Is(err, context.Canceled):
		return codes.Canceled.String()
	}
	return codes.Unknown.String()
}
