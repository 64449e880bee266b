package fsm

import (
	"time"

	iradix "github.com/hashicorp/go-immutable-radix/v2"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// Every read loads the published state once and works on that version, so
// a list is consistent even while Apply publishes newer states. Returned
// records are shared with the state: callers must not modify them.

// Key returns the key with this id.
func (f *FSM) Key(id string) (*fsmpb.Key, bool) {
	return f.st.Load().keys.Get([]byte(id))
}

// KeyBytes is Key for an id held as bytes (a ciphertext header names its
// key so), saving the decrypt path a string copy.
func (f *FSM) KeyBytes(id []byte) (*fsmpb.Key, bool) {
	return f.st.Load().keys.Get(id)
}

// Alias returns the alias with this full name ("alias/...").
func (f *FSM) Alias(name string) (*fsmpb.Alias, bool) {
	return f.st.Load().aliases.Get([]byte(name))
}

// Keys lists up to limit keys with ids greater than after, ordered by id;
// more reports that further keys follow. limit <= 0 means no limit.
func (f *FSM) Keys(after string, limit int) (keys []*fsmpb.Key, more bool) {
	return page(f.st.Load().keys, "", after, limit)
}

// Aliases lists up to limit aliases with names greater than after, ordered
// by name: all of them when keyID is "", else those pointing at keyID.
// limit <= 0 means no limit.
func (f *FSM) Aliases(keyID, after string, limit int) (aliases []*fsmpb.Alias, more bool) {
	st := f.st.Load()
	if keyID == "" {
		return page(st.aliases, "", after, limit)
	}
	return page(st.aliasByKey, keyID+"\x00", after, limit)
}

// KeyCount is the number of keys in every state.
func (f *FSM) KeyCount() int { return f.st.Load().keys.Len() }

// Node returns the cluster member with this id.
func (f *FSM) Node(id string) (*fsmpb.Node, bool) {
	return f.st.Load().nodes.Get([]byte(id))
}

// Nodes lists the registered cluster members ordered by id.
func (f *FSM) Nodes() []*fsmpb.Node {
	nodes, _ := page(f.st.Load().nodes, "", "", 0)
	return nodes
}

// DueDeletions lists the PENDING_DELETION keys whose deletion time is at or
// before now, soonest first; the leader proposes DELETE_KEY for each.
func (f *FSM) DueDeletions(now time.Time) []string {
	return due(f.st.Load().deletions, now)
}

// DueRotations lists the ENABLED keys with automatic rotation whose next
// rotation is at or before now, soonest first.
func (f *FSM) DueRotations(now time.Time) []string {
	return due(f.st.Load().rotations, now)
}

func due(index *iradix.Tree[string], now time.Time) []string {
	var ids []string
	limit := now.UnixNano()
	it := index.Root().Iterator()
	for k, id, ok := it.Next(); ok && keyTime(k) <= limit; k, id, ok = it.Next() {
		ids = append(ids, id)
	}
	return ids
}

// page walks the entries under prefix whose remaining key sorts after
// after, collecting up to limit values.
func page[T any](tree *iradix.Tree[T], prefix, after string, limit int) ([]T, bool) {
	var out []T
	it := tree.Root().Iterator()
	it.SeekLowerBound([]byte(prefix + after))
	for k, v, ok := it.Next(); ok; k, v, ok = it.Next() {
		if len(k) < len(prefix) || string(k[:len(prefix)]) != prefix {
			break
		}
		if string(k[len(prefix):]) == after && after != "" {
			continue
		}
		if limit > 0 && len(out) == limit {
			return out, true
		}
		out = append(out, v)
	}
	return out, false
}
