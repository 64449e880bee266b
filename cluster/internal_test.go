package cluster

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/fsm/fsmpb"
)

func validConfig() Config {
	c := DefaultConfig()
	c.NodeID, c.DataDir, c.APIAddr, c.ClusterAddr = "n1", "/tmp/x", "127.0.0.1:1", "127.0.0.1:4"
	return c
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error; "" = valid
	}{
		{"default plus identity", func(*Config) {}, ""},
		{"no node id", func(c *Config) { c.NodeID = "" }, "node id"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data dir"},
		{"no raft addr", func(c *Config) { c.RaftBindAddr = "" }, "raft bind"},
		{"no api addr", func(c *Config) { c.APIAddr = "" }, "api address"},
		{"no cluster addr", func(c *Config) { c.ClusterAddr = "" }, "cluster address"},
		{"no apply timeout", func(c *Config) { c.ApplyTimeout = 0 }, "apply timeout"},
		{"no dial options", func(c *Config) { c.DialOptions = nil }, "dial options"},
		{"no snapshots kept", func(c *Config) { c.RetainSnapshots = 0 }, "retain"},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout }, "raft"},
		{"tiny heartbeat", func(c *Config) { c.HeartbeatTimeout = time.Millisecond }, "raft"},
		{"zero threshold", func(c *Config) { c.SnapshotThreshold = 0 }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (!errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
}

func TestHclogAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := newHclog(l, "raft", nil).Named("net").With("peer", "n2")
	h.Trace("hidden below debug")
	h.Debug("dbg", "a", 1)
	h.Warn("odd args", "k")
	h.StandardLogger(nil).Print("from std log")
	out := buf.String()
	for _, want := range []string{"component=raft", "subcomponent=net", "peer=n2", "msg=dbg", "a=1", "level=WARN", "extra=k", "from std log"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hidden") || strings.Contains(out, "BADKEY") {
		t.Errorf("unexpected output:\n%s", out)
	}
	if h.Name() != "raft.net" || !h.IsDebug() || h.IsTrace() || h.GetLevel() != hclog.Debug {
		t.Errorf("name %q debug %v trace %v level %v", h.Name(), h.IsDebug(), h.IsTrace(), h.GetLevel())
	}
	newHclog(nil, "x", nil).Error("discarded") // a nil logger must not panic
}

// FuzzDecodeForwarded feeds arbitrary bytes to the leader's validation of a
// forwarded write. Whatever it accepts must be safe to put in the log: an
// fsm applying it must not panic (a panic there would stop every node).
func FuzzDecodeForwarded(f *testing.F) {
	ok, _ := fsm.NewCommand(fsmpb.CommandType_COMMAND_TYPE_ENABLE_KEY, &fsmpb.KeyRef{KeyId: "k-1"}, "r-1", time.Unix(1, 0))
	seeds := []*fsmpb.Command{
		ok,
		{Version: 1, Type: 999},
		{Version: 2, Type: fsmpb.CommandType_COMMAND_TYPE_CREATE_KEY},
		{Version: 1, Type: 999, IgnoreIfUnknown: true},
		{Version: 1, Type: fsmpb.CommandType_COMMAND_TYPE_CREATE_KEY, Payload: []byte{0xff, 0xff}},
	}
	for _, s := range seeds {
		b, _ := proto.Marshal(s)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x08})
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := decodeForwarded(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidCommand) || !errors.Is(err, fsm.ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrInvalidCommand and fsm.ErrBadCommand", err)
			}
			return
		}
		if cmd == nil {
			t.Fatal("nil command without error")
		}
		res := (&raftFSM{fsm: fsm.New(nil)}).Apply(&raft.Log{Index: 1, Data: b})
		if _, ok := res.(*fsmpb.Result); !ok {
			t.Fatalf("fsm returned %T", res)
		}
	})
}

// FuzzDecodeResult: a leader's reply never panics the follower and is
// either a Result with an index or errBadResult.
func FuzzDecodeResult(f *testing.F) {
	good, _ := proto.Marshal(&fsmpb.Result{Index: 7, Key: &fsmpb.Key{Id: "k-1"}})
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x00})
	f.Add([]byte{0x22, 0x05, 0x0a})
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := decodeResult(b)
		if err != nil {
			if !errors.Is(err, errBadResult) {
				t.Fatalf("error %v does not wrap errBadResult", err)
			}
			return
		}
		if res.GetIndex() == 0 {
			t.Fatal("accepted a result without an index")
		}
	})
}
