package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestMetaRoundTripAndLimits(t *testing.T) {
	m := Meta{ID: "n1", Region: "us-east", Zone: "us-east-1a", APIAddr: "10.0.0.1:7000",
		RaftAddr: "10.0.0.1:7001", BuildVersion: "v0.4.0", Role: RoleNonvoter, Healthy: true, NoVote: true,
		ClusterAddr: "10.0.0.1:7004"}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMeta(b)
	if err != nil || got != m {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, m)
	}
	// A node that predates the cluster address sends six fields; one that
	// postdates it may append more. Both decode.
	old := []byte{1, flagHealthy, byte(RoleVoter), 2, 'n', '1', 0, 0, 3, 'a', ':', '1', 3, 'a', ':', '2', 0}
	if got, err := DecodeMeta(old); err != nil || got.ClusterAddr != "" || got.APIAddr != "a:1" || !got.Healthy {
		t.Errorf("six-field meta = %+v, %v; want api a:1 and no cluster address", got, err)
	}
	newer := append(append([]byte{}, old...), 3, 'a', ':', '4', 2, 'z', 'z')
	if got, err := DecodeMeta(newer); err != nil || got.ClusterAddr != "a:4" {
		t.Errorf("meta with a field appended = %+v, %v; want cluster a:4", got, err)
	}
	if _, err := (Meta{ID: strings.Repeat("x", 600)}).Encode(); !errors.Is(err, ErrBadMeta) {
		t.Errorf("oversized meta: err = %v, want ErrBadMeta", err)
	}
	for name, in := range map[string][]byte{
		"empty":       nil,
		"version":     {2, 0, 0},
		"role":        {1, 0, 9},
		"short field": {1, 0, 0, 5, 'a'},
		"no id":       {1, 0, 0, 0, 0, 0, 0, 0, 0},
		"huge length": {1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if _, err := DecodeMeta(in); !errors.Is(err, ErrBadMeta) {
			t.Errorf("%s: err = %v, want ErrBadMeta", name, err)
		}
	}
}

func FuzzDecodeMeta(f *testing.F) {
	seed, _ := Meta{ID: "n1", Region: "r", Zone: "z", APIAddr: "a:1", RaftAddr: "a:2", Healthy: true, ClusterAddr: "a:4"}.Encode()
	f.Add(seed)
	f.Add([]byte{1, 7, 2, 1, 'x', 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		again, err := m.Encode()
		if err != nil {
			if len(b) > metaMaxSize {
				return
			}
			t.Fatalf("decoded %+v does not re-encode: %v", m, err)
		}
		m2, err := DecodeMeta(again)
		if err != nil || m2 != m {
			t.Fatalf("re-decode = %+v, %v; want %+v", m2, err, m)
		}
	})
}
