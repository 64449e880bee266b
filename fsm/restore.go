package fsm

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// readSnapshot parses a snapshot stream into a fresh state. The stream is
// outside bytes (a file, or a leader's InstallSnapshot): every failure is an
// error wrapping ErrBadSnapshot, never a panic, and nothing is trusted
// before it is checked (counts are compared, not preallocated).
func readSnapshot(in io.Reader) (*state, error) {
	r := &frameReader{r: bufio.NewReaderSize(in, 64<<10)}
	b, err := r.next()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("empty snapshot: %w", ErrBadSnapshot)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot header: %w", err)
	}
	var h fsmpb.SnapshotHeader
	if err := proto.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("snapshot header: %w: %w", ErrBadSnapshot, err)
	}
	if h.GetVersion() != snapshotVersion {
		return nil, fmt.Errorf("snapshot version %d, this node reads %d: %w", h.GetVersion(), snapshotVersion, ErrBadSnapshot)
	}

	tx := newTxn(emptyState())
	tx.index = h.GetAppliedIndex()
	var got counts
	for n := 1; ; n++ {
		b, err := r.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("snapshot record %d: %w", n, err)
		}
		rec := &fsmpb.SnapshotRecord{}
		if err := proto.Unmarshal(b, rec); err != nil {
			return nil, fmt.Errorf("snapshot record %d: %w: %w", n, ErrBadSnapshot, err)
		}
		if err := tx.restoreRecord(rec, &got); err != nil {
			return nil, fmt.Errorf("snapshot record %d: %w", n, err)
		}
		tx.touched = tx.touched[:0] // Restore announces "" instead
	}
	want := counts{h.GetKeys(), h.GetAliases(), h.GetNodes(), h.GetRequests()}
	if got != want {
		return nil, fmt.Errorf("snapshot holds %v records, header says %v (truncated?): %w", got, want, ErrBadSnapshot)
	}
	// Aliases follow keys in the stream, but check at the end so that the
	// rule does not depend on record order.
	it := tx.aliases.root().Iterator()
	for _, a, ok := it.Next(); ok; _, a, ok = it.Next() {
		if _, ok := tx.keys.get(a.GetKeyId()); !ok {
			return nil, fmt.Errorf("alias %s points at missing key %s: %w", a.GetName(), a.GetKeyId(), ErrBadSnapshot)
		}
	}
	return tx.commit(), nil
}

// counts tallies records by kind: keys, aliases, nodes, requests.
type counts struct{ keys, aliases, nodes, requests uint64 }

func (c counts) String() string {
	return fmt.Sprintf("%d keys, %d aliases, %d nodes, %d requests", c.keys, c.aliases, c.nodes, c.requests)
}

func (t *txn) restoreRecord(rec *fsmpb.SnapshotRecord, c *counts) error {
	switch r := rec.GetRecord().(type) {
	case *fsmpb.SnapshotRecord_Key:
		k := r.Key
		if k.GetId() == "" {
			return fmt.Errorf("key without id: %w", ErrBadSnapshot)
		}
		if _, dup := t.keys.get(k.GetId()); dup {
			return fmt.Errorf("key %s twice: %w", k.GetId(), ErrBadSnapshot)
		}
		t.putKey(nil, k)
		c.keys++
	case *fsmpb.SnapshotRecord_Alias:
		a := r.Alias
		if a.GetName() == "" || a.GetKeyId() == "" {
			return fmt.Errorf("alias %q without name or key: %w", a.GetName(), ErrBadSnapshot)
		}
		if _, dup := t.aliases.get(a.GetName()); dup {
			return fmt.Errorf("alias %s twice: %w", a.GetName(), ErrBadSnapshot)
		}
		t.putAlias(nil, a)
		c.aliases++
	case *fsmpb.SnapshotRecord_Node:
		n := r.Node
		if n.GetId() == "" {
			return fmt.Errorf("node without id: %w", ErrBadSnapshot)
		}
		if _, dup := t.nodes.get(n.GetId()); dup {
			return fmt.Errorf("node %s twice: %w", n.GetId(), ErrBadSnapshot)
		}
		t.nodes.put(n.GetId(), n)
		c.nodes++
	case *fsmpb.SnapshotRecord_Request:
		q := r.Request
		if q.GetRequestId() == "" || q.GetResult() == nil {
			return fmt.Errorf("remembered request %q without id or result: %w", q.GetRequestId(), ErrBadSnapshot)
		}
		if _, dup := t.requests.get(q.GetRequestId()); dup {
			return fmt.Errorf("request %s twice: %w", q.GetRequestId(), ErrBadSnapshot)
		}
		// The remembered Result of a create usually holds the key as it
		// still is; share the restored record instead of keeping a copy.
		if rk := q.GetResult().GetKey(); rk != nil {
			if k, ok := t.keys.get(rk.GetId()); ok && proto.Equal(k, rk) {
				q.Result.Key = k
			}
		}
		t.putRequest(q)
		c.requests++
	default:
		return fmt.Errorf("empty or unknown record kind: %w", ErrBadSnapshot)
	}
	return nil
}
