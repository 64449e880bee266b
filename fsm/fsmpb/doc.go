// Package fsmpb is the Raft log encoding and the replicated state of
// Meridian, meridian.fsm.v1: the Command envelope of every log entry, its
// payloads and results, the records a snapshot holds and their enums, which
// the fsm owns and freezes (a number in a log or a snapshot means the same
// thing forever). The Go code is generated from fsm.proto (committed;
// `make generate` rebuilds it).
package fsmpb
