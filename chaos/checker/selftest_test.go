package checker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridiankms/meridian/chaos/history"
)

const (
	en  = history.StateEnabled
	dis = history.StateDisabled
	pd  = history.StatePendingDeletion
)

var (
	exNF = exNotFound
	exIS = exInvalidState
	exD  = exDisabled
	exAE = exAlreadyExists
)

// A checker that never fails is worth nothing: each corrupted history
// below must fail the check it targets.

func TestLostWriteFails(t *testing.T) {
	var b builder
	b.add(0, history.CreateKey, "", 0, 5, history.Ok, ok(history.Output{KeyID: "k1"}))
	b.add(1, history.CreateKey, "", 1, 6, history.Ok, ok(history.Output{KeyID: "k2"}))
	h := b.done(t)
	cl := newMemCluster("a", "b", "c")
	cl.putKey("k1", KeyInfo{en, 1})
	cl.putKey("k2", KeyInfo{en, 1})
	if v := mustCheck(t, h, cl, testOptions()); !v.Passed() {
		t.Fatalf("intact cluster: %s", v)
	}
	delete(cl.keys["b"], "k2") // node b lost the acknowledged write
	v := mustCheck(t, h, cl, testOptions())
	if v.LostWrites.Result != Fail || v.LostWrites.Violations != 1 || v.LostWrites.Details[0].Node != "b" {
		t.Fatalf("lost write on b not caught: %s", v)
	}
	if !v.Failed() || v.Passed() {
		t.Error("verdict does not report the failure")
	}
}

func TestDivergedReplicasFail(t *testing.T) {
	var b builder
	b.add(0, history.CreateKey, "", 0, 5, history.Ok, ok(history.Output{KeyID: "k1"}))
	h := b.done(t)
	cl := newMemCluster("a", "b")
	cl.putKey("k1", KeyInfo{en, 1})
	cl.keys["b"]["k1"] = KeyInfo{dis, 1}
	if v := mustCheck(t, h, cl, testOptions()); v.LostWrites.Result != Fail {
		t.Fatalf("replicas disagreeing not caught: %s", v)
	}
}

func TestStaleReadFails(t *testing.T) {
	var b builder
	b.add(0, history.CreateKey, "", 0, 2, history.Ok, ok(history.Output{KeyID: "k"}))
	b.add(0, history.DisableKey, "k", 3, 5, history.Ok, history.Output{})
	b.add(1, history.DescribeKey, "k", 10, 11, history.Ok, describe(en, 1)) // after the ack: stale
	h := b.done(t)
	v := mustCheck(t, h, nil, testOptions())
	if v.Linearizability.Result != Fail {
		t.Fatalf("stale read not caught: %s", v)
	}
	if v.LostWrites.Result != Skipped || v.Ciphertexts.Result != Skipped {
		t.Errorf("RPO checks ran without a cluster: %s", v)
	}
	// Within the staleness bound the same read is allowed.
	opt := testOptions()
	opt.StalenessBound = ms(6)
	if v := mustCheck(t, h, nil, opt); v.Linearizability.Result != Pass {
		t.Fatalf("read within the bound rejected: %s", v)
	}
}

func TestLinearizabilityViolationsFail(t *testing.T) {
	cases := map[string]func(b *builder){
		"version goes backwards": func(b *builder) {
			b.add(0, history.CreateKey, "", 0, 1, history.Ok, ok(history.Output{KeyID: "k"}))
			b.add(0, history.RotateKeyOnDemand, "k", 2, 3, history.Ok, history.Output{KeyVersion: 2})
			b.add(1, history.DescribeKey, "k", 4, 5, history.Ok, describe(en, 1))
		},
		"rotation skips a version": func(b *builder) {
			b.add(0, history.CreateKey, "", 0, 1, history.Ok, ok(history.Output{KeyID: "k"}))
			b.add(0, history.RotateKeyOnDemand, "k", 2, 3, history.Ok, history.Output{KeyVersion: 3})
		},
		"enable succeeds while pending deletion": func(b *builder) {
			b.add(0, history.CreateKey, "", 0, 1, history.Ok, ok(history.Output{KeyID: "k"}))
			b.add(0, history.ScheduleKeyDeletion, "k", 2, 3, history.Ok, history.Output{State: pd})
			b.add(1, history.EnableKey, "k", 4, 5, history.Ok, history.Output{})
		},
		"cancel refused on a pending key": func(b *builder) {
			b.add(0, history.CreateKey, "", 0, 1, history.Ok, ok(history.Output{KeyID: "k"}))
			b.add(0, history.ScheduleKeyDeletion, "k", 2, 3, history.Ok, history.Output{State: pd})
			b.add(1, history.CancelKeyDeletion, "k", 4, 5, history.Failed, failed(exIS))
		},
		"rotate succeeds on a disabled key": func(b *builder) {
			disabledKey(b, 3)
			b.add(1, history.RotateKeyOnDemand, "k", 4, 5, history.Ok, history.Output{KeyVersion: 2})
		},
		"key not found after its create was acked": func(b *builder) {
			b.add(0, history.CreateKey, "", 0, 1, history.Ok, ok(history.Output{KeyID: "k"}))
			b.add(1, history.DescribeKey, "k", 4, 5, history.Failed, failed(exNF))
		},
		"alias created twice": func(b *builder) {
			i := b.add(0, history.CreateAlias, "k1", 0, 1, history.Ok, history.Output{})
			j := b.add(1, history.CreateAlias, "k2", 2, 3, history.Ok, history.Output{})
			b.op(i).Input.Alias, b.op(j).Input.Alias = "alias/a", "alias/a"
		},
		"alias deleted twice": func(b *builder) {
			i := b.add(0, history.DeleteAlias, "", 0, 1, history.Ok, history.Output{})
			j := b.add(1, history.DeleteAlias, "", 2, 3, history.Ok, history.Output{})
			b.op(i).Input.Alias, b.op(j).Input.Alias = "alias/a", "alias/a"
		},
		// Seeing a disable and then not seeing it is the stale read
		// linearizability forbids, even while the disable is in flight.
		"reads during a disable go back": func(b *builder) {
			disabledKey(b, 10)
			b.add(1, history.DescribeKey, "k", 3, 4, history.Ok, describe(dis, 1))
			b.add(2, history.DescribeKey, "k", 5, 6, history.Ok, describe(en, 1))
		},
		"unknown enable cannot explain a second state flip": func(b *builder) {
			unknownEnable(b, "Unavailable")
			b.add(1, history.DescribeKey, "k", 6, 7, history.Ok, describe(en, 1))  // the enable happened
			b.add(1, history.DescribeKey, "k", 8, 9, history.Ok, describe(dis, 1)) // ...and un-happened
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			var b builder
			build(&b)
			if v := mustCheck(t, b.done(t), nil, testOptions()); v.Linearizability.Result != Fail {
				t.Fatalf("not caught: %s", v)
			}
		})
	}
}

func TestEncryptAfterDisableFails(t *testing.T) {
	build := func(encAt int, enable history.Outcome) *history.History {
		var b builder
		disabledKey(&b, 10)
		if enable != "" {
			b.add(2, history.EnableKey, "k", 12, 14, enable, history.Output{})
		}
		b.add(1, history.Encrypt, "alias/a", encAt, encAt+1, history.Ok, history.Output{KeyID: "k", Node: "r2n1", Ciphertext: []byte("c")})
		return b.done(t)
	}
	opt := testOptions()
	opt.StalenessBound = ms(100)
	v := mustCheck(t, build(500, ""), nil, opt)
	if v.Staleness.Result != Fail || v.Staleness.Details[0].Node != "r2n1" || v.Staleness.Details[0].Op != 2 {
		t.Fatalf("encrypt 490ms after the disable ack (bound 100ms) not caught: %s", v)
	}
	if !strings.Contains(v.Staleness.Details[0].Msg, "r2n1") {
		t.Errorf("violation does not name the node: %q", v.Staleness.Details[0].Msg)
	}
	if v := mustCheck(t, build(50, ""), nil, opt); v.Staleness.Result != Pass {
		t.Fatalf("encrypt within the bound rejected: %s", v)
	}
	for _, o := range []history.Outcome{history.Ok, history.Unknown} {
		if v := mustCheck(t, build(500, o), nil, opt); v.Staleness.Result != Pass {
			t.Fatalf("encrypt after a %s re-enable rejected: %s", o, v)
		}
	}
	if v := mustCheck(t, build(500, history.Failed), nil, opt); v.Staleness.Result != Fail {
		t.Fatalf("a failed re-enable excused the encrypt: %s", v)
	}
}

func TestUndecryptableCiphertextFails(t *testing.T) {
	var b builder
	b.add(0, history.CreateKey, "", 0, 1, history.Ok, ok(history.Output{KeyID: "k"}))
	b.add(0, history.CreateKey, "", 0, 1, history.Ok, ok(history.Output{KeyID: "off"}))
	e := b.add(1, history.Encrypt, "k", 2, 3, history.Ok, history.Output{KeyID: "k", Ciphertext: []byte("ct1")})
	b.op(e).Input.PlaintextHash = history.HashPlaintext([]byte("hello"))
	g := b.add(1, history.GenerateDataKey, "k", 4, 5, history.Ok, history.Output{KeyID: "k", Ciphertext: []byte("ct2"),
		PlaintextHash: history.HashPlaintext([]byte("datakey"))})
	o := b.add(1, history.Encrypt, "off", 6, 7, history.Ok, history.Output{KeyID: "off", Ciphertext: []byte("ct3")})
	b.op(o).Input.PlaintextHash = history.HashPlaintext([]byte("x"))
	h := b.done(t)
	cl := newMemCluster("a", "b", "c")
	cl.putKey("k", KeyInfo{en, 1})
	cl.putKey("off", KeyInfo{dis, 1})
	cl.seal([]byte("ct1"), []byte("hello"))
	cl.seal([]byte("ct2"), []byte("datakey"))
	v := mustCheck(t, h, cl, testOptions())
	if !v.Passed() || v.Ciphertexts.Checked != 6 {
		t.Fatalf("intact ciphertexts (ct3's key disabled: skipped): %s", v)
	}
	delete(cl.seals["c"], "ct1")
	v = mustCheck(t, h, cl, testOptions())
	if v.Ciphertexts.Result != Fail || v.Ciphertexts.Details[0].Node != "c" || v.Ciphertexts.Details[0].Op != e {
		t.Fatalf("undecryptable ciphertext on c not caught: %s", v)
	}
	cl.seal([]byte("ct1"), []byte("hello"))
	cl.seals["a"]["ct2"] = []byte("another key") // decrypts, but to the wrong plaintext
	v = mustCheck(t, h, cl, testOptions())
	if v.Ciphertexts.Result != Fail || v.Ciphertexts.Details[0].Op != g {
		t.Fatalf("wrong plaintext not caught: %s", v)
	}
}

func TestUnreachableNodeInconclusive(t *testing.T) {
	var b builder
	b.add(0, history.CreateKey, "", 0, 1, history.Ok, ok(history.Output{KeyID: "k"}))
	h := b.done(t)
	cl := newMemCluster("a", "b")
	cl.putKey("k", KeyInfo{en, 1})
	cl.down["b"] = true
	opt := testOptions()
	opt.RPOTimeout = 50 * time.Millisecond
	v := mustCheck(t, h, cl, opt)
	if v.LostWrites.Result != Inconclusive {
		t.Fatalf("a node that never answers made the check %s: %s", v.LostWrites.Result, v)
	}
}

// Valid histories, with overlapping ops and unknown outcomes, must pass.
func TestValidConcurrentHistoriesPass(t *testing.T) {
	cases := map[string]func(b *builder){
		"describe overlapping a disable sees either state": func(b *builder) {
			disabledKey(b, 10)
			b.add(1, history.DescribeKey, "k", 3, 6, history.Ok, describe(dis, 1))
			b.add(2, history.DescribeKey, "k", 4, 5, history.Ok, describe(en, 1))
		},
		"unknown enable that took effect": func(b *builder) {
			unknownEnable(b, "DeadlineExceeded")
			b.add(1, history.DescribeKey, "k", 20, 21, history.Ok, describe(en, 1))
		},
		"unknown enable that did not take effect": func(b *builder) {
			unknownEnable(b, "Unavailable")
			b.add(1, history.DescribeKey, "k", 20, 21, history.Ok, describe(dis, 1))
		},
		"unknown enable that lands late": func(b *builder) {
			unknownEnable(b, "Unavailable")
			b.add(1, history.DescribeKey, "k", 20, 21, history.Ok, describe(dis, 1))
			b.add(1, history.DescribeKey, "k", 30, 31, history.Ok, describe(en, 1))
		},
		"concurrent rotations": func(b *builder) {
			b.add(0, history.CreateKey, "", 0, 1, history.Ok, ok(history.Output{KeyID: "k"}))
			b.add(0, history.RotateKeyOnDemand, "k", 2, 10, history.Ok, history.Output{KeyVersion: 3})
			b.add(1, history.RotateKeyOnDemand, "k", 3, 9, history.Ok, history.Output{KeyVersion: 2})
			b.add(2, history.RotateKeyOnDemand, "k", 4, 5, history.Unknown, history.Output{})
			b.add(3, history.DescribeKey, "k", 11, 12, history.Ok, describe(en, 4))
		},
		"schedule, cancel and refusals": func(b *builder) {
			b.add(0, history.CreateKey, "", 0, 1, history.Ok, ok(history.Output{KeyID: "k"}))
			b.add(0, history.ScheduleKeyDeletion, "k", 2, 3, history.Ok, history.Output{State: pd})
			b.add(1, history.EnableKey, "k", 4, 5, history.Failed, failed(exIS))
			b.add(1, history.RotateKeyOnDemand, "k", 6, 7, history.Failed, failed(exIS))
			b.add(0, history.CancelKeyDeletion, "k", 8, 9, history.Ok, history.Output{})
			b.add(1, history.RotateKeyOnDemand, "k", 10, 11, history.Failed, failed(exD))
			b.add(1, history.DescribeKey, "k", 12, 13, history.Ok, describe(dis, 1))
			b.add(1, history.CancelKeyDeletion, "k", 14, 15, history.Failed, failed(exIS))
		},
		"key that existed before the history": func(b *builder) {
			b.add(0, history.RotateKeyOnDemand, "old", 0, 1, history.Ok, history.Output{KeyVersion: 7})
			b.add(1, history.DescribeKey, "old", 2, 3, history.Ok, describe(en, 7))
			b.add(1, history.DisableKey, "old", 4, 5, history.Ok, history.Output{})
		},
		"describe before the create completes": func(b *builder) {
			b.add(0, history.CreateKey, "", 0, 10, history.Ok, ok(history.Output{KeyID: "k"}))
			b.add(1, history.DescribeKey, "k", 1, 2, history.Failed, failed(exNF))
			b.add(1, history.DescribeKey, "k", 3, 4, history.Ok, describe(en, 1))
		},
		"aliases with unknown outcomes": func(b *builder) {
			ops := []int{
				b.add(0, history.CreateAlias, "k1", 0, 1, history.Unknown, history.Output{}),
				b.add(1, history.CreateAlias, "k2", 2, 3, history.Failed, failed(exAE)), // so the first happened
				b.add(1, history.UpdateAlias, "k3", 4, 5, history.Ok, history.Output{}),
				b.add(2, history.CreateAlias, "k2", 6, 7, history.Failed, failed(exNF)), // unchecked: different alias
				b.add(1, history.DeleteAlias, "", 8, 9, history.Unknown, history.Output{}),
				b.add(1, history.DeleteAlias, "", 10, 11, history.Failed, failed(exNF)),
			}
			for i, o := range ops {
				b.op(o).Input.Alias = "alias/a"
				if i == 3 {
					b.op(o).Input.Alias = "alias/b"
				}
			}
		},
		"ops that say nothing are ignored": func(b *builder) {
			b.add(0, history.CreateKey, "", 0, 1, history.Unknown, history.Output{Error: "Unavailable"})
			b.add(0, history.CreateKey, "", 2, 3, history.Failed, failed("ValidationException"))
			b.add(1, history.DescribeKey, "k", 4, 5, history.Failed, failed("KMSUnavailableException"))
			b.add(1, history.Encrypt, "k", 6, 7, history.Failed, failed("DisabledException"))
			b.add(1, history.DescribeKey, "alias/x", 8, 9, history.Ok, describe(en, 1))
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			var b builder
			build(&b)
			if v := mustCheck(t, b.done(t), nil, testOptions()); !v.Passed() {
				t.Fatalf("valid history rejected: %s", v)
			}
		})
	}
}

func TestArtifactsOnFailure(t *testing.T) {
	var b builder
	b.add(0, history.CreateKey, "", 0, 2, history.Ok, ok(history.Output{KeyID: "k"}))
	b.add(0, history.DisableKey, "k", 3, 5, history.Ok, history.Output{})
	b.add(1, history.DescribeKey, "k", 10, 11, history.Ok, describe(en, 1))
	h := b.done(t)
	opt := testOptions()
	opt.OutDir = filepath.Join(t.TempDir(), "out")
	v := mustCheck(t, h, nil, opt)
	if len(v.Artifacts) != 3 {
		t.Fatalf("artifacts %v, want history, one HTML, verdict", v.Artifacts)
	}
	got, err := history.ReadFile(filepath.Join(opt.OutDir, "history.json"))
	if err != nil || len(got.Ops) != 3 {
		t.Fatalf("history artefact: %v", err)
	}
	html, err := os.ReadFile(filepath.Join(opt.OutDir, "linearizability-key_k.html"))
	if err != nil || !strings.Contains(string(html), "DescribeKey") {
		t.Fatalf("visualisation missing or empty: %v", err)
	}
	if _, err := os.Stat(filepath.Join(opt.OutDir, "verdict.json")); err != nil {
		t.Fatal(err)
	}
	// A passing run writes nothing.
	opt.OutDir = filepath.Join(t.TempDir(), "none")
	var ok builder
	ok.add(0, history.CreateKey, "", 0, 2, history.Ok, history.Output{KeyID: "k"})
	if v := mustCheck(t, ok.done(t), nil, opt); len(v.Artifacts) != 0 {
		t.Fatalf("passing run wrote %v", v.Artifacts)
	}
	if _, err := os.Stat(opt.OutDir); !os.IsNotExist(err) {
		t.Fatalf("passing run created %s", opt.OutDir)
	}
}

func TestTimeoutIsInconclusive(t *testing.T) {
	// Many concurrent rotations answered with the same version: no
	// linearization exists, but proving it means trying every order.
	var b builder
	b.add(0, history.CreateKey, "", 0, 1, history.Ok, ok(history.Output{KeyID: "k"}))
	for i := range 40 {
		b.add(i+1, history.RotateKeyOnDemand, "k", 2, 100, history.Unknown, history.Output{})
	}
	for i := range 40 {
		b.add(i+41, history.DescribeKey, "k", 3+i, 99, history.Ok, describe(en, 2+i%7))
	}
	b.add(99, history.DescribeKey, "k", 101, 102, history.Ok, describe(en, 1))
	opt := testOptions()
	opt.LinearizabilityTimeout = 200 * time.Millisecond
	start := time.Now()
	v := mustCheck(t, b.done(t), nil, opt)
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("check took %v despite a 200ms timeout", el)
	}
	// Proving this illegal takes porcupine far longer than 5 s.
	if r := v.Linearizability.Result; r != Inconclusive {
		t.Fatalf("got %s, want inconclusive: %s", r, v)
	}
	if v.Failed() || v.Passed() {
		t.Errorf("an inconclusive check must neither fail nor pass the run")
	}
}

func TestBadInput(t *testing.T) {
	opt := testOptions()
	opt.Parallelism = 0
	if _, err := Check(context.Background(), &history.History{}, nil, opt); err == nil {
		t.Error("zero parallelism accepted")
	}
	bad := &history.History{End: ms(1), Ops: []history.Op{{Index: 3, Kind: history.CreateKey, Outcome: history.Ok}}}
	if _, err := Check(context.Background(), bad, nil, testOptions()); err == nil {
		t.Error("invalid history accepted")
	}
}

// TestRPOChecksWaitOutBusyNodes: a node that answers Unavailable a few
// times before serving holds every write, so it is no lost write; a node
// that then says NotFound still is one.
func TestRPOChecksWaitOutBusyNodes(t *testing.T) {
	ctx := context.Background()
	h := &history.History{Ops: []history.Op{{Index: 0, Kind: history.CreateKey, Outcome: history.Ok,
		Output: history.Output{KeyID: "k1"}}}}
	cl := newMemCluster("n1", "n2")
	cl.putKey("k1", KeyInfo{State: "Enabled", Version: 1})
	cl.busy["n2"] = 3
	if v := CheckLostWrites(ctx, h, cl, testOptions()); v.Result != Pass || v.Violations != 0 {
		t.Fatalf("busy node counted as losing the write: %+v", v)
	}
	delete(cl.keys["n2"], "k1")
	cl.busy["n2"] = 3
	if v := CheckLostWrites(ctx, h, cl, testOptions()); v.Result != Fail || v.Violations != 1 {
		t.Fatalf("write missing on n2 after it stopped being busy: %+v, want one violation", v)
	}
}
