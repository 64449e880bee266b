package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestGossipConfigRTTAndValidation(t *testing.T) {
	cases := []struct {
		name              string
		lan               bool
		rtt               time.Duration
		timeout, interval time.Duration
	}{
		{"lan", true, 0, 50 * time.Millisecond, 100 * time.Millisecond},
		{"lan, 10ms rtt stays", true, 10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond},
		{"lan, 200ms rtt scales", true, 200 * time.Millisecond, 600 * time.Millisecond, 1200 * time.Millisecond},
		{"wan, 200ms rtt stays", false, 200 * time.Millisecond, 3 * time.Second, 5 * time.Second},
		{"wan, 2s rtt scales", false, 2 * time.Second, 6 * time.Second, 12 * time.Second},
	}
	for _, tc := range cases {
		c := validConfig()
		c.Gossip = GossipConfig{BindAddr: "127.0.0.1:0", Insecure: true, LAN: tc.lan, RTT: tc.rtt}
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		mc, err := c.memberlistConfig()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if mc.ProbeTimeout != tc.timeout || mc.ProbeInterval != tc.interval {
			t.Errorf("%s: probe timeout %v interval %v, want %v and %v", tc.name, mc.ProbeTimeout, mc.ProbeInterval, tc.timeout, tc.interval)
		}
		if tc.lan && mc.GossipToTheDeadTime != mc.PushPullInterval {
			t.Errorf("%s: gossip to the dead %v, want the push/pull interval %v", tc.name, mc.GossipToTheDeadTime, mc.PushPullInterval)
		}
	}
	for name, mutate := range map[string]func(*GossipConfig){
		"negative rtt":                 func(g *GossipConfig) { g.RTT = -time.Millisecond },
		"bad bind, autopilot off":      func(g *GossipConfig) { g.BindAddr = "nowhere" },
		"bad advertise, autopilot off": func(g *GossipConfig) { g.AdvertiseAddr = "127.0.0.1:port" },
	} {
		c := validConfig()
		c.Gossip = GossipConfig{BindAddr: "127.0.0.1:0", Insecure: true}
		c.Autopilot.Disabled = true
		mutate(&c.Gossip)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "gossip") {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig about gossip", name, err)
		}
	}
}
