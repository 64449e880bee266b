package keystore

import "context"

// Request is what an operation knows about the call it serves beyond its
// own arguments. A client plane attaches it to the call's context with
// WithRequest; every operation of Service may read it with RequestFrom.
// A context without one means the zero Request.
//
// The caller's identity belongs here: when authentication arrives, the
// client plane sets the authenticated principal on the Request once per
// call and authorization reads it from there, so no operation's signature
// changes. Until then a Request holds only the idempotency id. (A missing
// principal will be the zero value, which authorization must refuse.)
type Request struct {
	// ID is a write's idempotency id: the api's request_id field, not the
	// x-request-id correlation header. A write retried with the same ID
	// returns the first attempt's result instead of applying twice. Empty:
	// the store makes a fresh one, so that write is not safe to retry. At
	// most 128 bytes of printable ASCII without spaces (else
	// ErrValidation). Reads and cryptographic operations ignore it.
	ID string
}

// requestKey is the context key of the Request; unexported, so only
// WithRequest can set it.
type requestKey struct{}

// WithRequest returns ctx carrying r, replacing any Request ctx carried.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom returns the Request ctx carries, or the zero Request.
func RequestFrom(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey{}).(Request)
	return r
}
