package fsm

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm/fsmpb"
)

func TestCommandRoundTrip(t *testing.T) {
	payload := &fsmpb.TagKey{KeyId: "k-1", Tags: map[string]string{"b": "2", "a": "1", "c": "3"}}
	c, err := NewCommand(fsmpb.CommandType_COMMAND_TYPE_TAG_KEY, payload, "req-1", t0)
	if err != nil {
		t.Fatal(err)
	}
	if c.GetVersion() != CommandVersion || c.GetTimeUnixNano() != t0.UnixNano() || c.GetRequestId() != "req-1" {
		t.Fatalf("envelope = %v", c)
	}
	b, err := EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	// Deterministic encoding: map order must not change the bytes.
	for range 20 {
		c2, _ := NewCommand(fsmpb.CommandType_COMMAND_TYPE_TAG_KEY, payload, "req-1", t0)
		b2, _ := EncodeCommand(c2)
		if string(b2) != string(b) {
			t.Fatal("encoding is not deterministic")
		}
	}
	got, err := DecodeCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, c) {
		t.Fatalf("decoded %v, want %v", got, c)
	}
	var p fsmpb.TagKey
	if err := proto.Unmarshal(got.GetPayload(), &p); err != nil || !proto.Equal(&p, payload) {
		t.Fatalf("payload %v (%v), want %v", &p, err, payload)
	}
}

func TestCommandErrors(t *testing.T) {
	noVersion, _ := proto.Marshal(&fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_ENABLE_KEY})
	tests := []struct {
		name string
		err  func() error
	}{
		{"new unspecified type", func() error {
			_, err := NewCommand(fsmpb.CommandType_COMMAND_TYPE_UNSPECIFIED, &fsmpb.KeyRef{}, "", t0)
			return err
		}},
		{"new nil payload", func() error {
			_, err := NewCommand(fsmpb.CommandType_COMMAND_TYPE_ENABLE_KEY, nil, "", t0)
			return err
		}},
		{"encode nil", func() error { _, err := EncodeCommand(nil); return err }},
		{"encode version 0", func() error { _, err := EncodeCommand(&fsmpb.Command{}); return err }},
		{"decode empty", func() error { _, err := DecodeCommand(nil); return err }},
		{"decode garbage", func() error { _, err := DecodeCommand([]byte{0xff, 0xff, 0xff}); return err }},
		{"decode truncated", func() error {
			c, _ := NewCommand(fsmpb.CommandType_COMMAND_TYPE_ENABLE_KEY, &fsmpb.KeyRef{KeyId: "k-1"}, "r", t0)
			b, _ := EncodeCommand(c)
			_, err := DecodeCommand(b[:len(b)-2])
			return err
		}},
		{"decode version 0", func() error { _, err := DecodeCommand(noVersion); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("err = %v, want ErrBadCommand", err)
			}
		})
	}
}

func TestCommandTableCoversEveryType(t *testing.T) {
	for n, name := range fsmpb.CommandType_name {
		ct := fsmpb.CommandType(n)
		_, ok := commandTable[ct]
		if want := ct != fsmpb.CommandType_COMMAND_TYPE_UNSPECIFIED; ok != want {
			t.Errorf("%s registered = %v, want %v", name, ok, want)
		}
	}
	msg := mustPanic(t, func() {
		tbl := map[fsmpb.CommandType]decoder{}
		register(tbl, fsmpb.CommandType_COMMAND_TYPE_ENABLE_KEY, applyEnableKey)
		register(tbl, fsmpb.CommandType_COMMAND_TYPE_ENABLE_KEY, applyEnableKey)
	})
	if msg == "" {
		t.Fatal("empty panic message")
	}
}
