package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

// The golden files are a Raft log (uvarint-framed entries) and the snapshot
// its replay leads to, written before fsmpb had enums of its own: then a
// key's spec, usage, origin and protection level were int32 fields holding
// the api's enum numbers. They stand for the logs and snapshots of existing
// clusters, so they are never regenerated: a change that needs new golden
// bytes breaks every cluster's stored state.
const (
	goldenLog      = "testdata/history-v1.log"
	goldenSnapshot = "testdata/history-v1.snap"
)

// goldenKeys covers every key spec, usage, origin, protection level and
// state those records carry, as the raw numbers on the wire.
var goldenKeys = []struct {
	id                                string
	spec, usage, origin, level, state int32
	versions                          int
	rotationDays                      uint32
	deletionDays                      uint32
}{
	{id: "k-01", spec: 1, usage: 1, origin: 1, level: 1, state: 1, versions: 2, rotationDays: 90}, // SYMMETRIC_DEFAULT ENCRYPT_DECRYPT MERIDIAN SOFTWARE ENABLED
	{id: "k-02", spec: 2, usage: 3, origin: 1, level: 2, state: 1, versions: 1},                   // HMAC_256 GENERATE_VERIFY_MAC HSM
	{id: "k-03", spec: 3, usage: 3, origin: 1, level: 1, state: 2, versions: 1},                   // HMAC_384 DISABLED
	{id: "k-04", spec: 4, usage: 3, origin: 1, level: 1, state: 3, versions: 1, deletionDays: 7},  // HMAC_512 PENDING_DELETION
	{id: "k-05", spec: 5, usage: 1, origin: 1, level: 2, state: 1, versions: 1},                   // RSA_2048 ENCRYPT_DECRYPT HSM
	{id: "k-06", spec: 6, usage: 2, origin: 1, level: 1, state: 1, versions: 1},                   // RSA_3072 SIGN_VERIFY
	{id: "k-07", spec: 7, usage: 2, origin: 1, level: 2, state: 2, versions: 1},                   // RSA_4096
	{id: "k-08", spec: 8, usage: 2, origin: 1, level: 1, state: 1, versions: 1},                   // ECC_NIST_P256
	{id: "k-09", spec: 9, usage: 2, origin: 1, level: 2, state: 3, versions: 1, deletionDays: 30}, // ECC_NIST_P384
	{id: "k-10", spec: 10, usage: 2, origin: 1, level: 1, state: 1, versions: 1},                  // ECC_NIST_P521
}

// goldenHistory applies the golden history to a fresh FSM and returns the
// harness and every entry's bytes, framed as in the golden log.
func goldenHistory(t *testing.T) (*harness, []byte) {
	t.Helper()
	h := newHarness(t)
	var log []byte
	step := func(c *fsmpb.Command) {
		t.Helper()
		e := h.log(c)
		log = binary.AppendUvarint(log, uint64(len(e.data)))
		log = append(log, e.data...)
		if res := h.f.Apply(e.index, e.data); res.GetErrorCode() != "" {
			t.Fatalf("golden history: %s: %s: %s", c.GetType(), res.GetErrorCode(), res.GetErrorMessage())
		}
		h.now = h.now.Add(time.Second)
	}
	for _, g := range goldenKeys {
		k := &fsmpb.Key{
			Id:              g.id,
			Description:     "golden " + g.id,
			Tags:            map[string]string{"team": "kms", "spec": fmt.Sprint(g.spec)},
			Spec:            fsmpb.KeySpec(g.spec),
			Usage:           fsmpb.KeyUsage(g.usage),
			State:           fsmpb.KeyState_KEY_STATE_ENABLED,
			Origin:          fsmpb.Origin(g.origin),
			ProtectionLevel: fsmpb.ProtectionLevel(g.level),
			MaxStalenessMs:  int64(g.spec) * 1000,
		}
		k.Versions = append(k.Versions, newVersion(1))
		step(h.command(tCreate, &fsmpb.CreateKey{Key: k}, "req-create-"+g.id))
		for v := 2; v <= g.versions; v++ {
			step(h.command(tRotate, &fsmpb.RotateKey{KeyId: g.id, Version: newVersion(v)}, "req-rotate-"+g.id))
		}
		if g.rotationDays > 0 {
			step(h.command(tRotOn, &fsmpb.EnableRotation{KeyId: g.id, PeriodDays: g.rotationDays}, ""))
		}
		switch g.state {
		case 2:
			step(h.command(tDisable, &fsmpb.KeyRef{KeyId: g.id}, "req-disable-"+g.id))
		case 3:
			step(h.command(tSchedule, &fsmpb.ScheduleDeletion{KeyId: g.id, PendingWindowDays: g.deletionDays}, "req-delete-"+g.id))
		}
	}
	step(h.command(tCreateAlias, &fsmpb.AliasChange{Name: "alias/golden-sym", KeyId: "k-01"}, "req-alias-1"))
	step(h.command(tCreateAlias, &fsmpb.AliasChange{Name: "alias/golden-rsa", KeyId: "k-05"}, ""))
	step(h.command(tRegister, &fsmpb.Node{Id: "node-1", RaftAddr: "10.0.0.1:7000", ApiAddr: "10.0.0.1:8000", Region: "eu-west", Zone: "a"}, ""))
	return h, log
}

// checkGoldenState asserts that f holds the golden keys with the numbers
// they were written with.
func checkGoldenState(t *testing.T, f *FSM) {
	t.Helper()
	for _, g := range goldenKeys {
		k, ok := f.Key(g.id)
		if !ok {
			t.Fatalf("key %s missing", g.id)
		}
		got := [5]int32{int32(k.GetSpec()), int32(k.GetUsage()), int32(k.GetOrigin()), int32(k.GetProtectionLevel()), int32(k.GetState())}
		if want := [5]int32{g.spec, g.usage, g.origin, g.level, g.state}; got != want {
			t.Errorf("key %s: spec, usage, origin, level, state = %v, want %v", g.id, got, want)
		}
		if len(k.GetVersions()) != g.versions || k.GetRotationPeriodDays() != g.rotationDays || k.GetMaxStalenessMs() != int64(g.spec)*1000 {
			t.Errorf("key %s: %d versions, rotation %d days, staleness %d ms", g.id, len(k.GetVersions()), k.GetRotationPeriodDays(), k.GetMaxStalenessMs())
		}
	}
	if a, ok := f.Alias("alias/golden-rsa"); !ok || a.GetKeyId() != "k-05" {
		t.Errorf("alias/golden-rsa = %v", a)
	}
	if n, ok := f.Node("node-1"); !ok || n.GetRegion() != "eu-west" {
		t.Errorf("node-1 = %v", n)
	}
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A log written before fsmpb owned its enums replays to the same state
// and the same snapshot bytes.
func TestGoldenLogReplays(t *testing.T) {
	log := readGolden(t, goldenLog)
	f := New(testLogger(t))
	var index uint64
	for len(log) > 0 {
		n, w := binary.Uvarint(log)
		if w <= 0 || uint64(len(log)-w) < n {
			t.Fatalf("bad frame after entry %d", index)
		}
		index++
		data := log[w : w+int(n)]
		log = log[w+int(n):]
		if res := f.Apply(index, data); res.GetErrorCode() != "" {
			t.Fatalf("entry %d: %s: %s", index, res.GetErrorCode(), res.GetErrorMessage())
		}
	}
	checkGoldenState(t, f)
	if !bytes.Equal(snapshotBytes(t, f), readGolden(t, goldenSnapshot)) {
		t.Fatal("the replayed golden log snapshots to other bytes than the golden snapshot")
	}
}

// A snapshot written before fsmpb owned its enums restores to the same
// state and persists again byte for byte.
func TestGoldenSnapshotRestores(t *testing.T) {
	snap := readGolden(t, goldenSnapshot)
	f := New(testLogger(t))
	if err := f.Restore(readCloser(snap)); err != nil {
		t.Fatal(err)
	}
	checkGoldenState(t, f)
	if !bytes.Equal(snapshotBytes(t, f), snap) {
		t.Fatal("the restored golden snapshot persists to other bytes")
	}
}

// The commands this code builds for the golden history encode to exactly
// the golden log's bytes: the wire format of new entries did not move.
func TestGoldenHistoryEncodesTheSame(t *testing.T) {
	h, log := goldenHistory(t)
	if !bytes.Equal(log, readGolden(t, goldenLog)) {
		t.Fatal("the golden history encodes to other bytes than the golden log")
	}
	if !bytes.Equal(snapshotBytes(t, h.f), readGolden(t, goldenSnapshot)) {
		t.Fatal("the golden history snapshots to other bytes than the golden snapshot")
	}
}

// A record enum value keeps its number forever: records hold the number.
// Spec, usage, origin and protection level have the numbers the api's enums
// had when records stored those as int32. A new value is added here with a
// new number; nothing here ever changes.
func TestRecordEnumNumbersFrozen(t *testing.T) {
	tests := []struct {
		enum string
		got  map[string]int32
		want map[string]int32
	}{
		{"KeySpec", fsmpb.KeySpec_value, map[string]int32{
			"KEY_SPEC_UNSPECIFIED": 0, "KEY_SPEC_SYMMETRIC_DEFAULT": 1,
			"KEY_SPEC_HMAC_256": 2, "KEY_SPEC_HMAC_384": 3, "KEY_SPEC_HMAC_512": 4,
			"KEY_SPEC_RSA_2048": 5, "KEY_SPEC_RSA_3072": 6, "KEY_SPEC_RSA_4096": 7,
			"KEY_SPEC_ECC_NIST_P256": 8, "KEY_SPEC_ECC_NIST_P384": 9, "KEY_SPEC_ECC_NIST_P521": 10,
		}},
		{"KeyUsage", fsmpb.KeyUsage_value, map[string]int32{
			"KEY_USAGE_UNSPECIFIED": 0, "KEY_USAGE_ENCRYPT_DECRYPT": 1,
			"KEY_USAGE_SIGN_VERIFY": 2, "KEY_USAGE_GENERATE_VERIFY_MAC": 3,
		}},
		{"KeyState", fsmpb.KeyState_value, map[string]int32{
			"KEY_STATE_UNSPECIFIED": 0, "KEY_STATE_ENABLED": 1,
			"KEY_STATE_DISABLED": 2, "KEY_STATE_PENDING_DELETION": 3,
		}},
		{"Origin", fsmpb.Origin_value, map[string]int32{"ORIGIN_UNSPECIFIED": 0, "ORIGIN_MERIDIAN": 1}},
		{"ProtectionLevel", fsmpb.ProtectionLevel_value, map[string]int32{
			"PROTECTION_LEVEL_UNSPECIFIED": 0, "PROTECTION_LEVEL_SOFTWARE": 1, "PROTECTION_LEVEL_HSM": 2,
		}},
	}
	for _, tc := range tests {
		if !maps.Equal(tc.got, tc.want) {
			t.Errorf("fsmpb.%s = %v, want %v", tc.enum, tc.got, tc.want)
		}
	}
}
