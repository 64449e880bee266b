package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridiankms/meridian/fsm"
)

func TestCreateKeyEverySpec(t *testing.T) { bothLevels(t, testCreateKeyEverySpec) }

func testCreateKeyEverySpec(t *testing.T, level ProtectionLevel) {
	h := newLevelHarness(t, Config{}, level)
	tests := []struct {
		spec             KeySpec
		usage, wantUsage KeyUsage
		enc              []EncryptionAlgorithm
		sign             []SigningAlgorithm
		mac              []MacAlgorithm
	}{
		{spec: "", wantUsage: UsageEncryptDecrypt, enc: []EncryptionAlgorithm{EncSymmetricDefault}},
		{spec: SpecHMAC256, wantUsage: UsageGenerateVerifyMAC, mac: []MacAlgorithm{MacHMACSHA256}},
		{spec: SpecHMAC384, usage: UsageGenerateVerifyMAC, wantUsage: UsageGenerateVerifyMAC, mac: []MacAlgorithm{MacHMACSHA384}},
		{spec: SpecHMAC512, wantUsage: UsageGenerateVerifyMAC, mac: []MacAlgorithm{MacHMACSHA512}},
		{spec: SpecRSA2048, wantUsage: UsageEncryptDecrypt, enc: []EncryptionAlgorithm{EncRSAOAEPSHA1, EncRSAOAEPSHA256}},
		{spec: SpecRSA2048, usage: UsageSignVerify, wantUsage: UsageSignVerify, sign: rsaSignAlgs},
		{spec: SpecECCP256, wantUsage: UsageSignVerify, sign: []SigningAlgorithm{SignECDSASHA256}},
		{spec: SpecECCP384, usage: UsageSignVerify, wantUsage: UsageSignVerify, sign: []SigningAlgorithm{SignECDSASHA384}},
		{spec: SpecECCP521, wantUsage: UsageSignVerify, sign: []SigningAlgorithm{SignECDSASHA512}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s", tc.spec, tc.usage), func(t *testing.T) {
			m, wr, err := h.s.CreateKey(bg, CreateKeyInput{KeySpec: tc.spec, KeyUsage: tc.usage, Description: "d",
				Tags: []Tag{{"team", "x"}}, ProtectionLevel: level})
			must(t, err)
			wantSpec := tc.spec
			if wantSpec == "" {
				wantSpec = SpecSymmetricDefault
			}
			if !isUUID(m.KeyID) || m.KeyName != "meridian:key/"+m.KeyID || m.KeySpec != wantSpec || m.KeyUsage != tc.wantUsage ||
				m.KeyState != StateEnabled || !m.Enabled || m.Origin != OriginMeridian || m.ProtectionLevel != level ||
				m.CurrentVersion != 1 || m.Description != "d" || !m.CreationDate.Equal(h.clock.Now()) || wr.CommitIndex == 0 {
				t.Fatalf("metadata %+v, write %+v", m, wr)
			}
			if fmt.Sprint(m.EncryptionAlgorithms) != fmt.Sprint(tc.enc) || fmt.Sprint(m.SigningAlgorithms) != fmt.Sprint(tc.sign) ||
				fmt.Sprint(m.MacAlgorithms) != fmt.Sprint(tc.mac) {
				t.Fatalf("algorithms %v %v %v", m.EncryptionAlgorithms, m.SigningAlgorithms, m.MacAlgorithms)
			}
			d, err := h.s.DescribeKey(bg, m.KeyID)
			must(t, err)
			if fmt.Sprint(d) != fmt.Sprint(m) {
				t.Fatalf("DescribeKey = %+v, CreateKey returned %+v", d, m)
			}
		})
	}
}

// RSA_4096 generation is slow, so it runs once, here.
func TestCreateKeyRSA4096(t *testing.T) {
	h := newHarness(t, Config{})
	k := h.create(SpecRSA4096, UsageSignVerify)
	out, err := h.s.Sign(bg, SignInput{KeyID: k.KeyID, Message: []byte("m"), SigningAlgorithm: SignRSAPSSSHA512})
	must(t, err)
	if len(out.Signature) != 512 {
		t.Fatalf("RSA_4096 signature is %d bytes", len(out.Signature))
	}
}

func TestCreateKeyValidation(t *testing.T) {
	h := newHarness(t, Config{})
	tags := make([]Tag, 51)
	for i := range tags {
		tags[i] = Tag{Key: fmt.Sprint("k", i)}
	}
	tests := []struct {
		name string
		in   CreateKeyInput
		kind error
		msg  string
	}{
		{"unknown spec", CreateKeyInput{KeySpec: "AES_512"}, ErrValidation, "key spec \"AES_512\" is not one of"},
		{"unknown usage", CreateKeyInput{KeyUsage: "WRAP"}, ErrValidation, "key usage \"WRAP\""},
		{"symmetric sign", CreateKeyInput{KeyUsage: UsageSignVerify}, ErrValidation, "SYMMETRIC_DEFAULT does not support key usage SIGN_VERIFY; it supports ENCRYPT_DECRYPT"},
		{"ecc encrypt", CreateKeyInput{KeySpec: SpecECCP256, KeyUsage: UsageEncryptDecrypt}, ErrValidation, "does not support"},
		{"hmac encrypt", CreateKeyInput{KeySpec: SpecHMAC256, KeyUsage: UsageEncryptDecrypt}, ErrValidation, "does not support"},
		{"rsa mac", CreateKeyInput{KeySpec: SpecRSA2048, KeyUsage: UsageGenerateVerifyMAC}, ErrValidation, "ENCRYPT_DECRYPT or SIGN_VERIFY"},
		{"origin", CreateKeyInput{Origin: "EXTERNAL"}, ErrValidation, "origin"},
		{"protection unknown", CreateKeyInput{ProtectionLevel: "CLOUD"}, ErrValidation, "protection level"},
		{"description", CreateKeyInput{Description: strings.Repeat("d", 8193)}, ErrValidation, "description is 8193 bytes; must be at most 8192"},
		{"too many tags", CreateKeyInput{Tags: tags}, ErrValidation, "51 tags"},
		{"empty tag key", CreateKeyInput{Tags: []Tag{{"", "v"}}}, ErrValidation, "tag key \"\" must be 1-128"},
		{"long tag key", CreateKeyInput{Tags: []Tag{{strings.Repeat("k", 129), "v"}}}, ErrValidation, "1-128"},
		{"long tag value", CreateKeyInput{Tags: []Tag{{"k", strings.Repeat("v", 257)}}}, ErrValidation, "0-256"},
		{"duplicate tag", CreateKeyInput{Tags: []Tag{{"k", "1"}, {"k", "2"}}}, ErrValidation, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := h.s.CreateKey(bg, tc.in)
			wantErr(t, err, tc.kind, tc.msg)
		})
	}
	// The request id travels on the context (Request), not in the input.
	for name, id := range map[string]string{"request id": strings.Repeat("r", 129), "request id space": "a b"} {
		t.Run(name, func(t *testing.T) {
			_, _, err := h.s.CreateKey(WithRequest(bg, Request{ID: id}), CreateKeyInput{})
			wantErr(t, err, ErrValidation, "request id")
		})
	}
	if n := h.fsm.KeyCount(); n != 0 {
		t.Fatalf("%d keys created by invalid requests", n)
	}
}

func TestCreateKeyIdempotent(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := WithRequest(bg, Request{ID: "req-1"})
	a, wa, err := h.s.CreateKey(ctx, CreateKeyInput{})
	must(t, err)
	b, wb, err := h.s.CreateKey(ctx, CreateKeyInput{})
	must(t, err)
	if a.KeyID != b.KeyID || wa != wb || h.fsm.KeyCount() != 1 {
		t.Fatalf("retry made %s (index %d) after %s (index %d); %d keys", b.KeyID, wb.CommitIndex, a.KeyID, wa.CommitIndex, h.fsm.KeyCount())
	}
}

func TestResolveForms(t *testing.T) {
	h := newHarness(t, Config{})
	k := h.create("", "")
	_, err := h.s.CreateAlias(bg, "alias/app-key", k.KeyID)
	must(t, err)
	for _, ref := range []string{k.KeyID, "meridian:key/" + k.KeyID, "alias/app-key", "meridian:alias/app-key"} {
		m, err := h.s.DescribeKey(bg, ref)
		if err != nil || m.KeyID != k.KeyID {
			t.Fatalf("DescribeKey(%q) = %s, %v", ref, m.KeyID, err)
		}
	}
	tests := []struct {
		ref  string
		kind error
		msg  string
	}{
		{"", ErrValidation, "key id is required"},
		{"not-a-key", ErrValidation, "malformed"},
		{"meridian:key/123", ErrValidation, "malformed"},
		{k.KeyID + "x", ErrValidation, "malformed"},
		{"alias/", ErrValidation, "1-250"},
		{"alias/has space", ErrValidation, "may contain only"},
		{strings.Repeat("x", 3000), ErrValidation, "at most 2048"},
		{"\x00\xff", ErrValidation, "malformed"},
		{"00000000-0000-4000-8000-000000000000", ErrNotFound, "key 00000000-0000-4000-8000-000000000000 not found"},
		{"alias/missing", ErrNotFound, "alias alias/missing not found"},
		{"meridian:alias/missing", ErrNotFound, "not found"},
	}
	for _, tc := range tests {
		_, err := h.s.DescribeKey(bg, tc.ref)
		wantErr(t, err, tc.kind, tc.msg)
	}
}

func TestListKeysPagination(t *testing.T) {
	h := newHarness(t, Config{})
	want := map[string]bool{}
	for i := 0; i < 5; i++ {
		want[h.create("", "").KeyID] = true
	}
	var got []string
	marker, pages := "", 0
	for {
		p, err := h.s.ListKeys(bg, 2, marker)
		must(t, err)
		pages++
		for _, e := range p.Items {
			if e.KeyName != keyName(e.KeyID) {
				t.Fatalf("entry %+v", e)
			}
			got = append(got, e.KeyID)
		}
		if !p.Truncated {
			break
		}
		marker = p.NextMarker
	}
	if pages != 3 || len(got) != 5 {
		t.Fatalf("%d pages, %d keys", pages, len(got))
	}
	for _, id := range got {
		if !want[id] {
			t.Fatalf("unexpected key %s", id)
		}
	}
	p, err := h.s.ListKeys(bg, 0, "")
	must(t, err)
	if len(p.Items) != 5 || p.Truncated {
		t.Fatalf("default limit page: %d items, truncated %v", len(p.Items), p.Truncated)
	}
	_, err = h.s.ListKeys(bg, 1001, "")
	wantErr(t, err, ErrValidation, "limit is 1001; must be 1-1000")
	_, err = h.s.ListKeys(bg, -1, "")
	wantErr(t, err, ErrValidation, "limit")
	_, err = h.s.ListKeys(bg, 10, "garbage")
	wantErr(t, err, ErrValidation, "marker")
}

func TestLifecycleStates(t *testing.T) {
	h := newHarness(t, Config{})
	k := h.create("", "")
	state := func() KeyState {
		m, err := h.s.DescribeKey(bg, k.KeyID)
		must(t, err)
		return m.KeyState
	}
	_, err := h.s.DisableKey(bg, k.KeyID)
	must(t, err)
	_, err = h.s.DisableKey(bg, k.KeyID)
	must(t, err)
	if state() != StateDisabled {
		t.Fatal("not disabled")
	}
	_, err = h.s.EnableKey(bg, k.KeyID)
	must(t, err)
	if state() != StateEnabled {
		t.Fatal("not enabled")
	}

	for _, days := range []int{6, 31, -1} {
		_, err = h.s.ScheduleKeyDeletion(bg, k.KeyID, days)
		wantErr(t, err, ErrValidation, fmt.Sprintf("pending window is %d days; must be 7-30", days))
	}
	r, err := h.s.ScheduleKeyDeletion(bg, k.KeyID, 0)
	must(t, err)
	if r.KeyID != k.KeyID || r.KeyState != StatePendingDeletion || r.PendingWindowDays != 30 ||
		!r.DeletionDate.Equal(h.clock.Now().Add(30*24*time.Hour)) || r.CommitIndex == 0 {
		t.Fatalf("schedule result %+v", r)
	}
	m, _ := h.s.DescribeKey(bg, k.KeyID)
	if m.PendingWindowDays != 30 || m.DeletionDate.IsZero() || m.Enabled {
		t.Fatalf("pending metadata %+v", m)
	}
	_, err = h.s.ScheduleKeyDeletion(bg, k.KeyID, 7)
	wantErr(t, err, ErrInvalidState, "pending deletion")
	_, err = h.s.EnableKey(bg, k.KeyID)
	wantErr(t, err, ErrInvalidState, "")
	_, err = h.s.UpdateKeyDescription(bg, k.KeyID, "x")
	wantErr(t, err, ErrInvalidState, "")
	_, err = h.s.CancelKeyDeletion(bg, k.KeyID)
	must(t, err)
	if state() != StateDisabled {
		t.Fatal("cancelled deletion did not leave the key DISABLED")
	}
	_, err = h.s.CancelKeyDeletion(bg, k.KeyID)
	wantErr(t, err, ErrInvalidState, "")

	_, err = h.s.UpdateKeyDescription(bg, k.KeyID, "new")
	must(t, err)
	if m, _ := h.s.DescribeKey(bg, k.KeyID); m.Description != "new" {
		t.Fatalf("description %q", m.Description)
	}
	_, err = h.s.UpdateKeyDescription(bg, k.KeyID, string([]byte{0xff}))
	wantErr(t, err, ErrValidation, "UTF-8")
	_, err = h.s.EnableKey(bg, "00000000-0000-4000-8000-000000000000")
	wantErr(t, err, ErrNotFound, "")
}

func TestTags(t *testing.T) {
	h := newHarness(t, Config{})
	k := h.create("", "")
	_, err := h.s.TagResource(bg, k.KeyID, []Tag{{"b", "2"}, {"a", "1"}, {"c", ""}})
	must(t, err)
	p, err := h.s.ListResourceTags(bg, k.KeyID, 2, "")
	must(t, err)
	if fmt.Sprint(p.Items) != "[{a 1} {b 2}]" || !p.Truncated || p.NextMarker != "b" {
		t.Fatalf("page 1 %+v", p)
	}
	p, err = h.s.ListResourceTags(bg, k.KeyID, 2, p.NextMarker)
	must(t, err)
	if fmt.Sprint(p.Items) != "[{c }]" || p.Truncated {
		t.Fatalf("page 2 %+v", p)
	}
	_, err = h.s.UntagResource(bg, k.KeyID, []string{"a", "zz"})
	must(t, err)
	p, _ = h.s.ListResourceTags(bg, k.KeyID, 0, "")
	if len(p.Items) != 2 {
		t.Fatalf("after untag %+v", p)
	}
	_, err = h.s.TagResource(bg, k.KeyID, nil)
	wantErr(t, err, ErrValidation, "at least one tag")
	_, err = h.s.UntagResource(bg, k.KeyID, nil)
	wantErr(t, err, ErrValidation, "must be 1-50")
	many := make([]Tag, 49)
	for i := range many {
		many[i] = Tag{Key: fmt.Sprint("t", i)}
	}
	_, err = h.s.TagResource(bg, k.KeyID, many)
	wantErr(t, err, ErrLimitExceeded, "51 tags")
	_, err = h.s.TagResource(bg, k.KeyID, []Tag{{"meridian:x", ""}})
	wantErr(t, err, ErrValidation, "reserved")
	_, err = h.s.ListResourceTags(bg, k.KeyID, 5000, "")
	wantErr(t, err, ErrValidation, "limit")
}

func TestAliases(t *testing.T) {
	h := newHarness(t, Config{})
	a, b := h.create("", ""), h.create("", "")
	mac := h.create(SpecHMAC256, "")
	_, err := h.s.CreateAlias(bg, "alias/app", a.KeyID)
	must(t, err)
	_, err = h.s.CreateAlias(bg, "meridian:alias/app2", a.KeyID)
	must(t, err)
	tests := []struct {
		name, alias, target string
		kind                error
		msg                 string
	}{
		{"taken", "alias/app", b.KeyID, ErrAlreadyExists, "already exists"},
		{"reserved", "alias/meridian/x", a.KeyID, ErrValidation, "reserved"},
		{"no prefix", "app", a.KeyID, ErrValidation, "must start with alias/"},
		{"bad char", "alias/a.b", a.KeyID, ErrValidation, "may contain only"},
		{"too long", "alias/" + strings.Repeat("a", 251), a.KeyID, ErrValidation, "1-250"},
		{"target alias", "alias/x", "alias/app", ErrValidation, "not an alias"},
		{"target missing", "alias/x", "00000000-0000-4000-8000-000000000000", ErrNotFound, "not found"},
		{"target empty", "alias/x", "", ErrValidation, "target key id is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.s.CreateAlias(bg, tc.alias, tc.target)
			wantErr(t, err, tc.kind, tc.msg)
		})
	}
	_, err = h.s.UpdateAlias(bg, "alias/app", b.KeyID)
	must(t, err)
	if m, _ := h.s.DescribeKey(bg, "alias/app"); m.KeyID != b.KeyID {
		t.Fatalf("alias/app now names %s, want %s", m.KeyID, b.KeyID)
	}
	_, err = h.s.UpdateAlias(bg, "alias/app", mac.KeyID)
	wantErr(t, err, ErrValidation, "must match")
	_, err = h.s.UpdateAlias(bg, "alias/none", b.KeyID)
	wantErr(t, err, ErrNotFound, "")

	p, err := h.s.ListAliases(bg, "", 1, "")
	must(t, err)
	if len(p.Items) != 1 || p.Items[0].AliasName != "alias/app" || p.Items[0].AliasFullName != "meridian:alias/app" || !p.Truncated {
		t.Fatalf("page 1 %+v", p)
	}
	p, err = h.s.ListAliases(bg, "", 1, p.NextMarker)
	must(t, err)
	if len(p.Items) != 1 || p.Items[0].AliasName != "alias/app2" || p.Items[0].TargetKeyID != a.KeyID || p.Truncated {
		t.Fatalf("page 2 %+v", p)
	}
	p, err = h.s.ListAliases(bg, b.KeyID, 0, "")
	must(t, err)
	if len(p.Items) != 1 || p.Items[0].AliasName != "alias/app" || p.Items[0].CreationDate.IsZero() {
		t.Fatalf("aliases of b %+v", p)
	}
	_, err = h.s.ListAliases(bg, "", 0, "bad marker")
	wantErr(t, err, ErrValidation, "marker")

	_, err = h.s.DeleteAlias(bg, "alias/app")
	must(t, err)
	_, err = h.s.DeleteAlias(bg, "alias/app")
	wantErr(t, err, ErrNotFound, "")
	_, err = h.s.DescribeKey(bg, "alias/app")
	wantErr(t, err, ErrNotFound, "")
}

func TestApplyErrorMapping(t *testing.T) {
	h := newHarness(t, Config{})
	k := h.create("", "")
	tests := []struct {
		name  string
		err   error
		check func(error) bool
		msg   string
	}{
		{"no leader", fmt.Errorf("apply: %w", fsm.ErrNoLeader), func(e error) bool { return errors.Is(e, ErrUnavailable) }, "no quorum: no Raft leader reachable"},
		{"deadline", fmt.Errorf("forward: %w", context.DeadlineExceeded), func(e error) bool {
			return errors.Is(e, context.DeadlineExceeded) && !errors.Is(e, ErrUnavailable)
		}, ""},
		{"canceled", context.Canceled, func(e error) bool { return errors.Is(e, context.Canceled) }, ""},
		{"other", errors.New("leadership lost"), func(e error) bool { return errors.Is(e, ErrUnavailable) }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.ap.setErr(tc.err)
			defer h.ap.setErr(nil)
			_, err := h.s.DisableKey(bg, k.KeyID)
			if !tc.check(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v", err)
			}
			_, _, err = h.s.CreateKey(bg, CreateKeyInput{})
			if !tc.check(err) {
				t.Fatalf("CreateKey error %v", err)
			}
		})
	}
}

func TestHSMClosedIsUnavailable(t *testing.T) {
	h := newHarness(t, Config{})
	k := h.create("", "")
	h.hsm.Close()
	_, _, err := h.s.CreateKey(bg, CreateKeyInput{})
	wantErr(t, err, ErrUnavailable, "")
	_, err = h.s.Encrypt(bg, EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
	wantErr(t, err, ErrUnavailable, "")
	_, err = h.s.GenerateRandom(bg, 8)
	wantErr(t, err, ErrUnavailable, "")
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{MaxCachedVersions: -1}, {RotateRetries: -1}, {SchedulerTimeout: -time.Second}, {RewrapBatch: -1}, {RewrapBatch: 1001}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
	if _, err := New(Config{}, nil, nil, nil); err == nil {
		t.Fatal("New accepted nil dependencies")
	}
}

// Every key write names the key it acted on, resolved from the alias or
// name the caller gave, so callers (the CLI) can print it instead of their
// own input; a retried request gets the same answer.
func TestWritesNameTheResolvedKey(t *testing.T) {
	h := newHarness(t, Config{})
	k := h.create("", "")
	other := h.create("", "")
	wr, err := h.s.CreateAlias(bg, "alias/w", "meridian:key/"+k.KeyID)
	must(t, err)
	if wr.KeyID != k.KeyID {
		t.Fatalf("CreateAlias KeyID = %q, want %q", wr.KeyID, k.KeyID)
	}
	const ref = "alias/w"
	writes := []struct {
		name string
		do   func() (WriteResult, error)
	}{
		{"UpdateKeyDescription", func() (WriteResult, error) { return h.s.UpdateKeyDescription(bg, ref, "d") }},
		{"TagResource", func() (WriteResult, error) { return h.s.TagResource(bg, ref, []Tag{{Key: "a", Value: "1"}}) }},
		{"UntagResource", func() (WriteResult, error) { return h.s.UntagResource(bg, ref, []string{"a"}) }},
		{"EnableKeyRotation", func() (WriteResult, error) { return h.s.EnableKeyRotation(bg, ref, 0) }},
		{"DisableKeyRotation", func() (WriteResult, error) { return h.s.DisableKeyRotation(bg, ref) }},
		{"DisableKey", func() (WriteResult, error) { return h.s.DisableKey(bg, ref) }},
		{"DisableKey again (no change)", func() (WriteResult, error) { return h.s.DisableKey(bg, ref) }},
		{"EnableKey", func() (WriteResult, error) { return h.s.EnableKey(bg, ref) }},
		{"ScheduleKeyDeletion", func() (WriteResult, error) {
			r, err := h.s.ScheduleKeyDeletion(bg, ref, 7)
			return r.WriteResult, err
		}},
		{"CancelKeyDeletion", func() (WriteResult, error) { return h.s.CancelKeyDeletion(bg, ref) }},
		{"EnableKey with a request id", func() (WriteResult, error) {
			return h.s.EnableKey(WithRequest(bg, Request{ID: "3f0e9a52-6c1d-4e8b-9a7f-2b5c8d1e4f60"}), ref)
		}},
		{"EnableKey retried", func() (WriteResult, error) {
			return h.s.EnableKey(WithRequest(bg, Request{ID: "3f0e9a52-6c1d-4e8b-9a7f-2b5c8d1e4f60"}), ref)
		}},
	}
	for _, w := range writes {
		wr, err := w.do()
		must(t, err)
		if wr.KeyID != k.KeyID || wr.CommitIndex == 0 {
			t.Errorf("%s via %s: %+v, want KeyID %s", w.name, ref, wr, k.KeyID)
		}
	}
	wr, err = h.s.UpdateAlias(bg, ref, other.KeyID)
	must(t, err)
	if wr.KeyID != other.KeyID {
		t.Fatalf("UpdateAlias KeyID = %q, want the new target %q", wr.KeyID, other.KeyID)
	}
	wr, err = h.s.DeleteAlias(bg, ref)
	must(t, err)
	if wr.KeyID != "" {
		t.Fatalf("DeleteAlias KeyID = %q, want none", wr.KeyID)
	}
}
