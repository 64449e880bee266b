package fsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	iradix "github.com/hashicorp/go-immutable-radix/v2"
	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

const (
	// snapshotVersion is the framing version written in SnapshotHeader.
	snapshotVersion = 1
	// maxFrame bounds one header or record. A key with thousands of
	// versions stays far below it; a corrupt length cannot make Restore
	// allocate gigabytes.
	maxFrame = 64 << 20
)

// Snapshot captures the current state. It only takes a pointer: the state
// is immutable, so Persist can stream it while Apply moves on, and there is
// nothing to release.
func (f *FSM) Snapshot() *Snapshot {
	return &Snapshot{st: f.st.Load()}
}

// Snapshot is one captured state, as Snapshot took it.
type Snapshot struct{ st *state }

// Index is the applied index of the captured state.
func (s *Snapshot) Index() uint64 { return s.st.index }

// Persist writes the state to out: a uvarint-length-prefixed
// SnapshotHeader, then one length-prefixed SnapshotRecord per key, alias,
// node and remembered request, each group ordered by id. Closing or
// cancelling the destination is the caller's (raft's sink: the cluster's).
func (s *Snapshot) Persist(out io.Writer) error {
	if err := s.write(out); err != nil {
		return fmt.Errorf("persist snapshot at index %d: %w", s.st.index, err)
	}
	return nil
}

func (s *Snapshot) write(out io.Writer) error {
	st := s.st
	w := &frameWriter{w: bufio.NewWriterSize(out, 64<<10)}
	w.frame(&fsmpb.SnapshotHeader{
		Version:      snapshotVersion,
		Keys:         uint64(st.keys.Len()),
		Aliases:      uint64(st.aliases.Len()),
		Nodes:        uint64(st.nodes.Len()),
		Requests:     uint64(st.requests.Len()),
		AppliedIndex: st.index,
	})
	writeAll(w, st.keys, func(k *fsmpb.Key) *fsmpb.SnapshotRecord {
		return &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Key{Key: k}}
	})
	writeAll(w, st.aliases, func(a *fsmpb.Alias) *fsmpb.SnapshotRecord {
		return &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Alias{Alias: a}}
	})
	writeAll(w, st.nodes, func(n *fsmpb.Node) *fsmpb.SnapshotRecord {
		return &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Node{Node: n}}
	})
	writeAll(w, st.requests, func(r *fsmpb.AppliedRequest) *fsmpb.SnapshotRecord {
		return &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Request{Request: r}}
	})
	if w.err != nil {
		return w.err
	}
	return w.w.Flush()
}

func writeAll[T any](w *frameWriter, tree *iradix.Tree[T], wrap func(T) *fsmpb.SnapshotRecord) {
	it := tree.Root().Iterator()
	for _, v, ok := it.Next(); ok && w.err == nil; _, v, ok = it.Next() {
		w.frame(wrap(v))
	}
}

// frameWriter writes uvarint-length-prefixed messages and keeps the first
// error, so the writing code reads as a plain sequence.
type frameWriter struct {
	w   *bufio.Writer
	buf []byte
	err error
}

func (w *frameWriter) frame(m proto.Message) {
	if w.err != nil {
		return
	}
	var err error
	w.buf, err = marshal.MarshalAppend(binary.AppendUvarint(w.buf[:0], uint64(marshal.Size(m))), m)
	if err != nil {
		w.err = fmt.Errorf("marshal %T: %w", m, err)
		return
	}
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = err
	}
}

// Restore replaces the state with the snapshot read from rc. The new state
// is built aside and swapped in whole, so a bad snapshot leaves the current
// state untouched. Subscribers then hear "" (everything may have changed).
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	f.mu.Lock()
	f.st.Store(st)
	f.advance(st.index)
	f.mu.Unlock()
	f.notify([]string{""})
	return nil
}

// frameReader reads uvarint-length-prefixed frames from outside bytes.
type frameReader struct {
	r   *bufio.Reader
	buf []byte
}

// next returns the next frame, io.EOF at a clean end of stream, or an
// error wrapping ErrBadSnapshot. The returned slice is reused by the next
// call; proto.Unmarshal copies what it keeps.
func (r *frameReader) next() ([]byte, error) {
	n, err := binary.ReadUvarint(r.r)
	switch {
	case errors.Is(err, io.EOF):
		return nil, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("truncated frame length: %w", ErrBadSnapshot)
	case err != nil:
		return nil, fmt.Errorf("frame length: %w: %w", ErrBadSnapshot, err)
	case n > maxFrame:
		return nil, fmt.Errorf("frame of %d bytes exceeds %d: %w", n, maxFrame, ErrBadSnapshot)
	}
	if uint64(cap(r.buf)) < n {
		// Grow as bytes arrive rather than trusting the length: a corrupt
		// length on a short stream must not cost maxFrame of memory.
		b, err := io.ReadAll(io.LimitReader(r.r, int64(n)))
		if err != nil {
			return nil, fmt.Errorf("frame of %d bytes: %w: %w", n, ErrBadSnapshot, err)
		}
		if uint64(len(b)) != n {
			return nil, fmt.Errorf("frame of %d bytes truncated after %d: %w", n, len(b), ErrBadSnapshot)
		}
		r.buf = b
		return b, nil
	}
	b := r.buf[:n]
	if k, err := io.ReadFull(r.r, b); err != nil {
		return nil, fmt.Errorf("frame of %d bytes truncated after %d: %w: %w", n, k, ErrBadSnapshot, err)
	}
	return b, nil
}
