// Package history records what chaos workload clients asked of a cluster and
// what they were told, in a form the checker can judge after the run.
//
// Times are offsets from the History's Start taken from one monotonic clock
// (the Recorder's), so a wall-clock step during a run cannot reorder
// operations and a history survives JSON without losing its order.
package history

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Kind names the API call an Op made, as in the gRPC method name.
type Kind string

// The calls the workload makes. Kind is a string so a workload may record
// others; the checker ignores kinds it does not model.
const (
	CreateKey           Kind = "CreateKey"
	DescribeKey         Kind = "DescribeKey"
	EnableKey           Kind = "EnableKey"
	DisableKey          Kind = "DisableKey"
	ScheduleKeyDeletion Kind = "ScheduleKeyDeletion"
	CancelKeyDeletion   Kind = "CancelKeyDeletion"
	RotateKeyOnDemand   Kind = "RotateKeyOnDemand"
	CreateAlias         Kind = "CreateAlias"
	UpdateAlias         Kind = "UpdateAlias"
	DeleteAlias         Kind = "DeleteAlias"
	Encrypt             Kind = "Encrypt"
	Decrypt             Kind = "Decrypt"
	ReEncrypt           Kind = "ReEncrypt"
	GenerateDataKey     Kind = "GenerateDataKey"
	Sign                Kind = "Sign"
	Verify              Kind = "Verify"
	GenerateMac         Kind = "GenerateMac"
	VerifyMac           Kind = "VerifyMac"
)

// IsWrite reports whether the call can change replicated state. Only
// writes can have an Unknown outcome: a failed read had no effect.
func (k Kind) IsWrite() bool {
	switch k {
	case CreateKey, EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion,
		RotateKeyOnDemand, CreateAlias, UpdateAlias, DeleteAlias:
		return true
	}
	return false
}

// IsDataPlane reports whether the call uses key material (and so must be
// refused once the key is disabled, within the staleness bound).
func (k Kind) IsDataPlane() bool {
	switch k {
	case Encrypt, Decrypt, ReEncrypt, GenerateDataKey, Sign, Verify, GenerateMac, VerifyMac:
		return true
	}
	return false
}

// Outcome is what the caller can conclude about an operation's effect.
type Outcome string

const (
	// Pending: invoked, not yet completed. A History taken from a Recorder
	// never holds Pending ops: they become Unknown.
	Pending Outcome = ""
	// Ok: acknowledged; it took effect exactly once.
	Ok Outcome = "ok"
	// Failed: definitely had no effect.
	Failed Outcome = "failed"
	// Unknown: it may or may not have taken effect (a timeout, or a
	// connection lost after the write may have been proposed).
	Unknown Outcome = "unknown"
)

// Key states as DescribeKey reports them, spelled like the API enum
// without its prefix.
const (
	StateEnabled         = "ENABLED"
	StateDisabled        = "DISABLED"
	StatePendingDeletion = "PENDING_DELETION"
)

// Input is what the checker needs to know about a request. It never holds
// plaintext: only its hash.
type Input struct {
	// RequestID is the idempotency id a write was sent with.
	RequestID string `json:"request_id,omitempty"`
	// Alias is the alias name ("alias/x") of alias ops.
	Alias string `json:"alias,omitempty"`
	// PlaintextHash is HashPlaintext of an Encrypt/Sign input.
	PlaintextHash string `json:"plaintext_hash,omitempty"`
	// Ciphertext is a Decrypt input.
	Ciphertext []byte `json:"ciphertext,omitempty"`
	// Context is the encryption context sent with Encrypt/Decrypt.
	Context map[string]string `json:"context,omitempty"`
	// PendingWindowDays is a ScheduleKeyDeletion's window.
	PendingWindowDays int `json:"pending_window_days,omitempty"`
}

// Output is what the caller was told.
type Output struct {
	// KeyID is the key the server named: the new key of a CreateKey, the
	// resolved key of a call made through an alias.
	KeyID string `json:"key_id,omitempty"`
	// State is the key state a DescribeKey or ScheduleKeyDeletion returned
	// (StateEnabled, ...).
	State string `json:"state,omitempty"`
	// KeyVersion is the current version a DescribeKey saw, the new version
	// a RotateKeyOnDemand made, or the version a data-plane call used.
	KeyVersion int `json:"key_version,omitempty"`
	// Ciphertext is an Encrypt's or GenerateDataKey's ciphertext blob.
	Ciphertext []byte `json:"ciphertext,omitempty"`
	// PlaintextHash is HashPlaintext of a Decrypt's plaintext or of a
	// GenerateDataKey's data key.
	PlaintextHash string `json:"plaintext_hash,omitempty"`
	// CommitIndex is the Raft index a write was committed at.
	CommitIndex uint64 `json:"commit_index,omitempty"`
	// Node is the id of the node that served the call ("" if none did).
	Node string `json:"node,omitempty"`
	// Token is the consistency token (a commit index) the call carried: a
	// node serves the call only once it has applied that index (0: none
	// sent).
	Token uint64 `json:"consistency_token,omitempty"`
	// Error is the exception name (e.g. "DisabledException"), or the gRPC
	// code name when there was none (e.g. "Unavailable"); "" on success.
	Error string `json:"error,omitempty"`
}

// Op is one call: what was asked, when, and what came back.
type Op struct {
	// Index is the op's position in its History, fixed at Invoke.
	Index int `json:"index"`
	// Client identifies the workload client (one call at a time each).
	Client int  `json:"client"`
	Kind   Kind `json:"kind"`
	// KeyID is the key id or alias the request addressed; for alias ops,
	// the target key; "" for CreateKey.
	KeyID  string `json:"key_id,omitempty"`
	Input  Input  `json:"input"`
	Output Output `json:"output"`
	// Invoke and Complete are offsets from History.Start; Complete is the
	// end of the history for ops that never completed.
	Invoke   time.Duration `json:"invoke_ns"`
	Complete time.Duration `json:"complete_ns"`
	Outcome  Outcome       `json:"outcome"`
}

// Key returns the key the op acted on: the server's answer when it named
// one (resolving aliases and naming created keys), else the request's.
func (o *Op) Key() string {
	if o.Output.KeyID != "" {
		return o.Output.KeyID
	}
	return o.KeyID
}

// History is a whole run's operations in invocation order.
type History struct {
	// Start is the wall time of offset 0, for humans and for lining the
	// history up with fault logs.
	Start time.Time `json:"start"`
	// End is the offset at which the history was taken.
	End time.Duration `json:"end_ns"`
	Ops []Op          `json:"ops"`
}

// HashPlaintext is the digest recorded in place of a plaintext, so the
// history can be written out without holding any.
func HashPlaintext(p []byte) string {
	s := sha256.Sum256(p)
	return hex.EncodeToString(s[:])
}
