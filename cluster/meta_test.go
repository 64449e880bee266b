package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestMetaRoundTripAndLimits(t *testing.T) {
	m := Meta{ID: "n1", Region: "us-east", Zone: "us-east-1a", APIAddr: "10.0.0.1:7000",
		RaftAddr: "10.0.0.1:7001", BuildVersion: "v0.4.0", Role: RoleNonvoter, Healthy: true, NoVote: true}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMeta(b)
	if err != nil || got != m {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, m)
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
	seed, _ := Meta{ID: "n1", Region: "r", Zone: "z", APIAddr: "a:1", RaftAddr: "a:2", Healthy: true}.Encode()
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
