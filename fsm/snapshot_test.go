package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

// bigState applies a varied history: keys with 1-5 versions in every state,
// tags, rotation, aliases, nodes and remembered requests.
func bigState(t testing.TB, keys, aliases int) *harness {
	h := newHarness(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range keys {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", rng.Uint32(), i)
		k := newKey(id, specSymmetric, usageEncrypt, 1+rng.IntN(5))
		k.Description = fmt.Sprintf("key %d", i)
		if i%3 == 0 {
			k.Tags = map[string]string{"team": fmt.Sprint(i % 7), "env": "prod"}
		}
		h.now = h.now.Add(time.Second)
		reqID := ""
		if i%4 == 0 {
			reqID = fmt.Sprintf("req-%d", i)
		}
		h.applyReq(tCreate, &fsmpb.CreateKey{Key: k}, reqID)
		switch i % 5 {
		case 1:
			h.mustApply(tDisable, &fsmpb.KeyRef{KeyId: id})
		case 2:
			h.mustApply(tSchedule, &fsmpb.ScheduleDeletion{KeyId: id, PendingWindowDays: uint32(7 + i%24)})
		case 3:
			h.mustApply(tRotOn, &fsmpb.EnableRotation{KeyId: id, PeriodDays: uint32(90 + i%300)})
		}
	}
	all, _ := h.f.Keys("", 0)
	all = slices.DeleteFunc(all, func(k *fsmpb.Key) bool { return k.GetState() == pending })
	for i := 0; i < aliases; i++ {
		k := all[rng.IntN(len(all))]
		h.mustApply(tCreateAlias, &fsmpb.AliasChange{Name: fmt.Sprintf("alias/a-%05d", i), KeyId: k.GetId()})
	}
	for i := range 5 {
		h.mustApply(tRegister, &fsmpb.Node{Id: fmt.Sprintf("node-%d", i), RaftAddr: fmt.Sprintf("127.0.0.1:%d", 7000+i),
			ApiAddr: fmt.Sprintf("127.0.0.1:%d", 8000+i), Region: []string{"us", "eu", "ap"}[i%3], Zone: "a"})
	}
	return h
}

func TestSnapshotRoundTrip(t *testing.T) {
	h := bigState(t, 2000, 1000)
	src := h.f.st.Load()
	if src.aliases.Len() != 1000 || src.requests.Len() != 500 || src.deletions.Len() == 0 || src.rotations.Len() == 0 {
		t.Fatalf("fixture too small: %d aliases %d requests", src.aliases.Len(), src.requests.Len())
	}

	// Through raft's own file snapshot store, as a node does it.
	store, err := raft.NewFileSnapshotStore(t.TempDir(), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := store.Create(raft.SnapshotVersionMax, h.index, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := h.f.Snapshot()
	// Apply goes on while the snapshot persists: it must not show up.
	h.createKey("after-snapshot")
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	_, rc, err := store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	g := New(testLogger(t))
	if err := g.Restore(rc); err != nil {
		t.Fatal(err)
	}
	if g.AppliedIndex() != src.index || src.index != h.index-1 {
		t.Fatalf("applied index %d, want %d", g.AppliedIndex(), src.index)
	}
	if _, ok := g.Key("after-snapshot"); ok {
		t.Fatal("snapshot saw a later Apply")
	}
	assertSameState(t, src, g.st.Load())

	// Same state, same bytes: every node writes an identical snapshot.
	orig := snapshotBytes(t, fsmOf(src))
	if again := snapshotBytes(t, g); !bytes.Equal(orig, again) {
		t.Fatal("re-persisted snapshot differs")
	}

	// The restored FSM keeps applying: remembered requests still answer.
	h2 := &harness{t: t, f: g, index: g.AppliedIndex(), now: h.now}
	res := h2.applyReq(tCreate, &fsmpb.CreateKey{Key: newKey("x", specSymmetric, usageEncrypt, 1)}, "req-0")
	if res.GetIndex() >= g.AppliedIndex() || res.GetKey() == nil {
		t.Fatalf("remembered request after restore = %v", res)
	}
}

// fsmOf wraps a captured state in an FSM to use the read methods on it.
func fsmOf(s *state) *FSM {
	f := New(nil)
	f.st.Store(s)
	return f
}

// assertSameState compares every table and index record by record.
func assertSameState(t *testing.T, want, got *state) {
	t.Helper()
	if want.index != got.index {
		t.Fatalf("index %d, want %d", got.index, want.index)
	}
	sameTree(t, "keys", want.keys.Root().Iterator(), got.keys.Root().Iterator(), want.keys.Len(), got.keys.Len())
	sameTree(t, "aliases", want.aliases.Root().Iterator(), got.aliases.Root().Iterator(), want.aliases.Len(), got.aliases.Len())
	sameTree(t, "aliasByKey", want.aliasByKey.Root().Iterator(), got.aliasByKey.Root().Iterator(), want.aliasByKey.Len(), got.aliasByKey.Len())
	sameTree(t, "nodes", want.nodes.Root().Iterator(), got.nodes.Root().Iterator(), want.nodes.Len(), got.nodes.Len())
	sameTree(t, "requests", want.requests.Root().Iterator(), got.requests.Root().Iterator(), want.requests.Len(), got.requests.Len())
	for name, pair := range map[string][2]interface{ Len() int }{
		"requestsByTime": {want.requestsByTime, got.requestsByTime},
		"deletions":      {want.deletions, got.deletions},
		"rotations":      {want.rotations, got.rotations},
	} {
		if pair[0].Len() != pair[1].Len() {
			t.Fatalf("%s: %d entries, want %d", name, pair[1].Len(), pair[0].Len())
		}
	}
	far := time.Unix(0, 1<<62)
	fw, fg := fsmOf(want), fsmOf(got)
	if !slices.Equal(fw.DueDeletions(far), fg.DueDeletions(far)) || !slices.Equal(fw.DueRotations(far), fg.DueRotations(far)) {
		t.Fatal("due lists differ")
	}
}

type iter[T proto.Message] interface {
	Next() ([]byte, T, bool)
}

func sameTree[T proto.Message](t *testing.T, name string, want, got iter[T], wantLen, gotLen int) {
	t.Helper()
	if wantLen != gotLen {
		t.Fatalf("%s: %d records, want %d", name, gotLen, wantLen)
	}
	for {
		wk, wv, wok := want.Next()
		gk, gv, gok := got.Next()
		if wok != gok {
			t.Fatalf("%s: lengths differ", name)
		}
		if !wok {
			return
		}
		if !bytes.Equal(wk, gk) || !proto.Equal(wv, gv) {
			t.Fatalf("%s: %q = %v, want %q = %v", name, gk, gv, wk, wv)
		}
	}
}

func TestRestoreRejectsBadInput(t *testing.T) {
	h := newHarness(t)
	h.createKey("k-1")
	h.mustApply(tCreateAlias, &fsmpb.AliasChange{Name: "alias/a", KeyId: "k-1"})
	h.applyReq(tRegister, &fsmpb.Node{Id: "n1"}, "req-1")
	good := snapshotBytes(t, h.f)

	frame := func(m proto.Message) []byte {
		b, _ := proto.Marshal(m)
		return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
	}
	header := func(hd *fsmpb.SnapshotHeader) []byte { return frame(hd) }
	rec := func(r *fsmpb.SnapshotRecord) []byte { return frame(r) }
	key := rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Key{Key: newKey("k-1", 1, 1, 1)}})
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"garbage", []byte("this is not a snapshot at all")},
		{"huge length", binary.AppendUvarint(nil, 1<<40)},
		{"length past end", cat(binary.AppendUvarint(nil, 1000), []byte{1, 2, 3})},
		{"version 0", header(&fsmpb.SnapshotHeader{})},
		{"version 2", header(&fsmpb.SnapshotHeader{Version: 2})},
		{"missing records", header(&fsmpb.SnapshotHeader{Version: 1, Keys: 2})},
		{"extra record", cat(header(&fsmpb.SnapshotHeader{Version: 1}), key)},
		{"duplicate key", cat(header(&fsmpb.SnapshotHeader{Version: 1, Keys: 2}), key, key)},
		{"key without id", cat(header(&fsmpb.SnapshotHeader{Version: 1, Keys: 1}),
			rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Key{Key: &fsmpb.Key{}}}))},
		{"empty record", cat(header(&fsmpb.SnapshotHeader{Version: 1, Keys: 1}), rec(&fsmpb.SnapshotRecord{}))},
		{"dangling alias", cat(header(&fsmpb.SnapshotHeader{Version: 1, Aliases: 1}),
			rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Alias{Alias: &fsmpb.Alias{Name: "alias/x", KeyId: "k-9"}}}))},
		{"request without result", cat(header(&fsmpb.SnapshotHeader{Version: 1, Requests: 1}),
			rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Request{Request: &fsmpb.AppliedRequest{RequestId: "r"}}}))},
		{"node without id", cat(header(&fsmpb.SnapshotHeader{Version: 1, Nodes: 1}),
			rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Node{Node: &fsmpb.Node{}}}))},
		{"trailing garbage", cat(good, []byte{0x05, 0xff})},
		{"garbage record", cat(header(&fsmpb.SnapshotHeader{Version: 1, Keys: 1}), []byte{3, 0xff, 0xff, 0xff})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := bigStateSmall(t)
			before := f.st.Load()
			err := f.Restore(readCloser(tc.in))
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("err = %v, want ErrBadSnapshot", err)
			}
			if f.st.Load() != before || f.AppliedIndex() != before.index {
				t.Fatal("a failed restore changed the state")
			}
		})
	}

	// Every truncation of a valid snapshot is refused.
	for n := range len(good) {
		if _, err := readSnapshot(bytes.NewReader(good[:n])); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("prefix of %d/%d bytes: err = %v", n, len(good), err)
		}
	}
	if _, err := readSnapshot(bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
}

func bigStateSmall(t *testing.T) *FSM {
	h := newHarness(t)
	h.createKey("keep")
	return h.f
}
