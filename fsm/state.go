package fsm

import (
	"encoding/binary"

	iradix "github.com/hashicorp/go-immutable-radix/v2"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// state is one published, immutable version of the replicated state. Apply
// builds the next state from the current one and swaps a pointer; readers
// and snapshots hold on to whichever version they loaded.
type state struct {
	keys       *iradix.Tree[*fsmpb.Key]   // key id
	aliases    *iradix.Tree[*fsmpb.Alias] // alias name
	aliasByKey *iradix.Tree[*fsmpb.Alias] // key id \x00 alias name
	nodes      *iradix.Tree[*fsmpb.Node]  // node id
	requests   *iradix.Tree[*fsmpb.AppliedRequest]
	// Time-ordered indexes: timeKey(t) + id. They make pruning and the
	// leader's due-work scans cost what is due, not what is stored.
	requestsByTime *iradix.Tree[string]
	deletions      *iradix.Tree[string] // PENDING_DELETION keys by deletion time
	rotations      *iradix.Tree[string] // ENABLED keys with rotation on, by next rotation

	index uint64 // last log index applied into this state
}

func emptyState() *state {
	return &state{
		keys:           iradix.New[*fsmpb.Key](),
		aliases:        iradix.New[*fsmpb.Alias](),
		aliasByKey:     iradix.New[*fsmpb.Alias](),
		nodes:          iradix.New[*fsmpb.Node](),
		requests:       iradix.New[*fsmpb.AppliedRequest](),
		requestsByTime: iradix.New[string](),
		deletions:      iradix.New[string](),
		rotations:      iradix.New[string](),
	}
}

// treeTx is one tree inside a txn. The iradix transaction is opened on the
// first write, so a command touching only keys pays nothing for the others.
type treeTx[T any] struct {
	tree *iradix.Tree[T]
	tx   *iradix.Txn[T]
}

func (t *treeTx[T]) get(k string) (T, bool) {
	if t.tx != nil {
		return t.tx.Get([]byte(k))
	}
	return t.tree.Get([]byte(k))
}

func (t *treeTx[T]) w() *iradix.Txn[T] {
	if t.tx == nil {
		t.tx = t.tree.Txn()
	}
	return t.tx
}

func (t *treeTx[T]) put(k string, v T) { t.w().Insert([]byte(k), v) }

func (t *treeTx[T]) del(k string) { t.w().Delete([]byte(k)) }

func (t *treeTx[T]) root() *iradix.Node[T] {
	if t.tx != nil {
		return t.tx.Root()
	}
	return t.tree.Root()
}

func (t *treeTx[T]) commit() *iradix.Tree[T] {
	if t.tx == nil {
		return t.tree
	}
	// No watchers are registered on these trees, so skip Notify's work.
	return t.tx.CommitOnly()
}

// txn is the write side of one Apply (or of a Restore building a state from
// scratch). Every record it stores must be fresh or a clone: published
// records are shared with readers and never change.
type txn struct {
	keys           treeTx[*fsmpb.Key]
	aliases        treeTx[*fsmpb.Alias]
	aliasByKey     treeTx[*fsmpb.Alias]
	nodes          treeTx[*fsmpb.Node]
	requests       treeTx[*fsmpb.AppliedRequest]
	requestsByTime treeTx[string]
	deletions      treeTx[string]
	rotations      treeTx[string]

	index   uint64
	now     int64    // the command's time, Unix nanoseconds
	touched []string // key ids changed, for subscribers
}

func newTxn(s *state) *txn {
	return &txn{
		keys:           treeTx[*fsmpb.Key]{tree: s.keys},
		aliases:        treeTx[*fsmpb.Alias]{tree: s.aliases},
		aliasByKey:     treeTx[*fsmpb.Alias]{tree: s.aliasByKey},
		nodes:          treeTx[*fsmpb.Node]{tree: s.nodes},
		requests:       treeTx[*fsmpb.AppliedRequest]{tree: s.requests},
		requestsByTime: treeTx[string]{tree: s.requestsByTime},
		deletions:      treeTx[string]{tree: s.deletions},
		rotations:      treeTx[string]{tree: s.rotations},
		index:          s.index,
	}
}

func (t *txn) commit() *state {
	return &state{
		keys:           t.keys.commit(),
		aliases:        t.aliases.commit(),
		aliasByKey:     t.aliasByKey.commit(),
		nodes:          t.nodes.commit(),
		requests:       t.requests.commit(),
		requestsByTime: t.requestsByTime.commit(),
		deletions:      t.deletions.commit(),
		rotations:      t.rotations.commit(),
		index:          t.index,
	}
}

// putKey stores k (which replaces old, nil for a new key) and keeps the
// time indexes in step with it.
func (t *txn) putKey(old, k *fsmpb.Key) {
	t.unindexKey(old)
	t.keys.put(k.GetId(), k)
	if k.GetState() == fsmpb.KeyState_KEY_STATE_PENDING_DELETION {
		t.deletions.put(timeKey(k.GetDeletionUnixNano(), k.GetId()), k.GetId())
	}
	if rotationDue(k) {
		t.rotations.put(timeKey(k.GetNextRotationUnixNano(), k.GetId()), k.GetId())
	}
	t.touch(k.GetId())
}

func (t *txn) deleteKey(k *fsmpb.Key) {
	t.unindexKey(k)
	t.keys.del(k.GetId())
	t.touch(k.GetId())
}

func (t *txn) unindexKey(k *fsmpb.Key) {
	if k == nil {
		return
	}
	if k.GetState() == fsmpb.KeyState_KEY_STATE_PENDING_DELETION {
		t.deletions.del(timeKey(k.GetDeletionUnixNano(), k.GetId()))
	}
	if rotationDue(k) {
		t.rotations.del(timeKey(k.GetNextRotationUnixNano(), k.GetId()))
	}
}

func (t *txn) touch(id string) {
	if n := len(t.touched); n > 0 && t.touched[n-1] == id {
		return
	}
	t.touched = append(t.touched, id)
}

// putAlias stores a, replacing old (nil for a new alias).
func (t *txn) putAlias(old, a *fsmpb.Alias) {
	if old != nil {
		t.aliasByKey.del(aliasKeyIndex(old.GetKeyId(), old.GetName()))
	}
	t.aliases.put(a.GetName(), a)
	t.aliasByKey.put(aliasKeyIndex(a.GetKeyId(), a.GetName()), a)
}

func (t *txn) deleteAlias(a *fsmpb.Alias) {
	t.aliases.del(a.GetName())
	t.aliasByKey.del(aliasKeyIndex(a.GetKeyId(), a.GetName()))
}

// aliasesOf lists the aliases that point at keyID.
func (t *txn) aliasesOf(keyID string) []*fsmpb.Alias {
	var out []*fsmpb.Alias
	it := t.aliasByKey.root().Iterator()
	it.SeekPrefix([]byte(keyID + "\x00"))
	for _, a, ok := it.Next(); ok; _, a, ok = it.Next() {
		out = append(out, a)
	}
	return out
}

func (t *txn) putRequest(r *fsmpb.AppliedRequest) {
	t.requests.put(r.GetRequestId(), r)
	t.requestsByTime.put(timeKey(r.GetTimeUnixNano(), r.GetRequestId()), r.GetRequestId())
}

// pruneRequests forgets requests remembered before cutoff. The time index
// is ordered, so this visits only what it removes.
func (t *txn) pruneRequests(cutoff int64) {
	var drop []string
	it := t.requestsByTime.root().Iterator()
	for k, id, ok := it.Next(); ok; k, id, ok = it.Next() {
		if keyTime(k) >= cutoff {
			break
		}
		drop = append(drop, string(k))
		t.requests.del(id)
	}
	for _, k := range drop {
		t.requestsByTime.del(k)
	}
}

// rotationDue says whether k belongs in the rotation index.
func rotationDue(k *fsmpb.Key) bool {
	return k.GetState() == fsmpb.KeyState_KEY_STATE_ENABLED &&
		k.GetRotationPeriodDays() > 0 && k.GetNextRotationUnixNano() != 0
}

func aliasKeyIndex(keyID, name string) string { return keyID + "\x00" + name }

// timeKey makes an index key that sorts by time, then id. Flipping the sign
// bit orders negative times (before 1970) ahead of positive ones.
func timeKey(unixNano int64, id string) string {
	b := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(b, uint64(unixNano)^(1<<63))
	return string(append(b, id...))
}

func keyTime(k []byte) int64 {
	return int64(binary.BigEndian.Uint64(k[:8]) ^ (1 << 63))
}
