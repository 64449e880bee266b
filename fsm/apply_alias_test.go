package fsm

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

const (
	tCreateAlias = fsmpb.CommandType_COMMAND_TYPE_CREATE_ALIAS
	tUpdateAlias = fsmpb.CommandType_COMMAND_TYPE_UPDATE_ALIAS
	tDeleteAlias = fsmpb.CommandType_COMMAND_TYPE_DELETE_ALIAS
	tRegister    = fsmpb.CommandType_COMMAND_TYPE_REGISTER_NODE
	tDeregister  = fsmpb.CommandType_COMMAND_TYPE_DEREGISTER_NODE
)

// aliasFixture: "sym" and "sym2" are symmetric keys, "mac" an HMAC key,
// "gone" is pending deletion; alias/a points at sym.
func aliasFixture(t *testing.T) *harness {
	h := newHarness(t)
	h.createKey("sym")
	h.createKey("sym2")
	h.mustApply(tCreate, &fsmpb.CreateKey{Key: newKey("mac", specHMAC256, usageMAC, 1)})
	h.keyInState("gone", pending)
	h.mustApply(tCreateAlias, &fsmpb.AliasChange{Name: "alias/a", KeyId: "sym"})
	h.now = h.now.Add(time.Hour)
	return h
}

func TestAliasRules(t *testing.T) {
	tests := []struct {
		name    string
		cmd     fsmpb.CommandType
		alias   string
		keyID   string
		want    string
		wantKey string // where alias points afterwards, "" = absent
	}{
		{"create", tCreateAlias, "alias/b", "sym", "", "sym"},
		{"create taken", tCreateAlias, "alias/a", "sym2", CodeAlreadyExists, "sym"},
		{"create key missing", tCreateAlias, "alias/b", "nope", CodeNotFound, ""},
		{"create key pending", tCreateAlias, "alias/b", "gone", CodeInvalidState, ""},
		{"create no prefix", tCreateAlias, "b", "sym", CodeInvalid, ""},
		{"create bare prefix", tCreateAlias, "alias/", "sym", CodeInvalid, ""},
		{"create empty key id", tCreateAlias, "alias/b", "", CodeInvalid, ""},
		{"update", tUpdateAlias, "alias/a", "sym2", "", "sym2"},
		{"update same key", tUpdateAlias, "alias/a", "sym", "", "sym"},
		{"update missing alias", tUpdateAlias, "alias/b", "sym2", CodeNotFound, ""},
		{"update key missing", tUpdateAlias, "alias/a", "nope", CodeNotFound, "sym"},
		{"update other spec", tUpdateAlias, "alias/a", "mac", CodeInvalid, "sym"},
		{"update key pending", tUpdateAlias, "alias/a", "gone", CodeInvalidState, "sym"},
		{"delete", tDeleteAlias, "alias/a", "", "", ""},
		{"delete missing", tDeleteAlias, "alias/b", "", CodeNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := aliasFixture(t)
			res := h.apply(tc.cmd, &fsmpb.AliasChange{Name: tc.alias, KeyId: tc.keyID})
			if res.GetErrorCode() != tc.want {
				t.Fatalf("code = %q (%s), want %q", res.GetErrorCode(), res.GetErrorMessage(), tc.want)
			}
			if res.GetKey() != nil {
				t.Fatalf("alias result carries a key")
			}
			a, ok := h.f.Alias(tc.alias)
			if ok != (tc.wantKey != "") || a.GetKeyId() != tc.wantKey {
				t.Fatalf("alias = %v (present %v), want key %q", a, ok, tc.wantKey)
			}
			// The by-key index agrees with the alias table.
			for _, k := range []string{"sym", "sym2", "mac", "gone"} {
				list, _ := h.f.Aliases(k, "", 0)
				for _, x := range list {
					if x.GetKeyId() != k {
						t.Fatalf("index lists %v under %s", x, k)
					}
				}
				if ok && k == tc.wantKey && !slices.Contains(list, a) {
					t.Fatalf("index misses %s under %s", tc.alias, k)
				}
			}
			if tc.want == "" && tc.cmd == tUpdateAlias {
				if a.GetCreatedUnixNano() != t0.UnixNano() || a.GetUpdatedUnixNano() != h.now.UnixNano() {
					t.Fatalf("times: %v", a)
				}
				if tc.wantKey != "sym" {
					if old, _ := h.f.Aliases("sym", "", 0); len(old) != 0 {
						t.Fatalf("old key still lists %v", old)
					}
				}
			}
		})
	}
}

func TestAliasUsageMustMatch(t *testing.T) {
	h := newHarness(t)
	h.createKey("enc")
	other := newKey("other", specSymmetric, usageMAC, 1) // same spec, other usage
	h.mustApply(tCreate, &fsmpb.CreateKey{Key: other})
	h.mustApply(tCreateAlias, &fsmpb.AliasChange{Name: "alias/x", KeyId: "enc"})
	if res := h.apply(tUpdateAlias, &fsmpb.AliasChange{Name: "alias/x", KeyId: "other"}); res.GetErrorCode() != CodeInvalid {
		t.Fatalf("code = %q", res.GetErrorCode())
	}
}

func TestListing(t *testing.T) {
	h := newHarness(t)
	for i := range 25 {
		h.createKey(fmt.Sprintf("k-%02d", i))
	}
	for i := range 12 {
		h.mustApply(tCreateAlias, &fsmpb.AliasChange{Name: fmt.Sprintf("alias/%02d", i), KeyId: fmt.Sprintf("k-%02d", i%3)})
	}

	var ids []string
	after, pages := "", 0
	for {
		keys, more := h.f.Keys(after, 10)
		pages++
		for _, k := range keys {
			ids = append(ids, k.GetId())
		}
		if !more {
			break
		}
		after = keys[len(keys)-1].GetId()
	}
	if pages != 3 || len(ids) != 25 || !slices.IsSorted(ids) {
		t.Fatalf("%d pages, ids %v", pages, ids)
	}
	if all, more := h.f.Keys("", 0); len(all) != 25 || more {
		t.Fatalf("unlimited = %d more=%v", len(all), more)
	}
	if exact, more := h.f.Keys("", 25); len(exact) != 25 || more {
		t.Fatalf("limit = count: %d more=%v", len(exact), more)
	}
	// after need not exist: listing resumes at the next id.
	if keys, _ := h.f.Keys("k-10x", 2); len(keys) != 2 || keys[0].GetId() != "k-11" {
		t.Fatalf("after missing id: %v", keys)
	}

	if all, _ := h.f.Aliases("", "", 0); len(all) != 12 {
		t.Fatalf("aliases = %d", len(all))
	}
	byKey, more := h.f.Aliases("k-01", "", 2)
	if len(byKey) != 2 || !more || byKey[0].GetName() != "alias/01" || byKey[1].GetName() != "alias/04" {
		t.Fatalf("page 1 = %v more=%v", byKey, more)
	}
	byKey, more = h.f.Aliases("k-01", "alias/04", 2)
	if len(byKey) != 2 || more || byKey[0].GetName() != "alias/07" || byKey[1].GetName() != "alias/10" {
		t.Fatalf("page 2 = %v more=%v", byKey, more)
	}
	// A key id that is a prefix of another must not see its aliases.
	if got, _ := h.f.Aliases("k-0", "", 0); len(got) != 0 {
		t.Fatalf("prefix key lists %v", got)
	}
	if h.f.KeyCount() != 25 {
		t.Fatalf("count = %d", h.f.KeyCount())
	}
}

func TestNodes(t *testing.T) {
	h := newHarness(t)
	h.mustApply(tRegister, &fsmpb.Node{Id: "n2", RaftAddr: "127.0.0.1:2", Region: "eu"})
	h.mustApply(tRegister, &fsmpb.Node{Id: "n1", RaftAddr: "127.0.0.1:1", Region: "us"})
	h.mustApply(tRegister, &fsmpb.Node{Id: "n2", RaftAddr: "127.0.0.1:22", Region: "eu", Zone: "b"})
	nodes := h.f.Nodes()
	if len(nodes) != 2 || nodes[0].GetId() != "n1" || nodes[1].GetRaftAddr() != "127.0.0.1:22" {
		t.Fatalf("nodes = %v", nodes)
	}
	if n, ok := h.f.Node("n2"); !ok || n.GetZone() != "b" {
		t.Fatalf("n2 = %v", n)
	}
	h.mustApply(tDeregister, &fsmpb.Node{Id: "n2"})
	h.mustApply(tDeregister, &fsmpb.Node{Id: "n2"}) // removing twice is fine
	if _, ok := h.f.Node("n2"); ok || len(h.f.Nodes()) != 1 {
		t.Fatal("n2 still registered")
	}
	for _, ct := range []fsmpb.CommandType{tRegister, tDeregister} {
		if res := h.apply(ct, &fsmpb.Node{}); res.GetErrorCode() != CodeInvalid {
			t.Fatalf("%s without id: %q", ct, res.GetErrorCode())
		}
	}
}
