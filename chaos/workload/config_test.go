package workload

import (
	"errors"
	"testing"
	"time"

	"github.com/meridiankms/meridian/chaos/history"
	"github.com/meridiankms/meridian/client"
)

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		return Config{Regions: []string{"a", "b"}, Duration: time.Second, Recorder: history.NewRecorder(),
			ClientConfig: func(string) client.Config { return client.DefaultConfig("127.0.0.1:1") }}
	}
	c := good()
	if err := c.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	if c.Clients != 4 || c.Rate != 50 || c.HotKeys != 2 || c.CallTimeout != 5*time.Second {
		t.Errorf("defaults not filled: %+v", c)
	}
	bad := map[string]func(*Config){
		"no regions":       func(c *Config) { c.Regions = nil },
		"no client config": func(c *Config) { c.ClientConfig = nil },
		"no recorder":      func(c *Config) { c.Recorder = nil },
		"no duration":      func(c *Config) { c.Duration = 0 },
		"negative rate":    func(c *Config) { c.Rate = -1 },
		"too many clients": func(c *Config) { c.Clients = 5000 },
		"fraction > 1":     func(c *Config) { c.ControlFraction = 1.5 },
		"negative ops":     func(c *Config) { c.MaxOps = -3 },
		"negative timeout": func(c *Config) { c.CallTimeout = -time.Second },
	}
	for name, mutate := range bad {
		c := good()
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// TestTune: whatever the harness hands over, the workload's clients fail
// over quickly and prefer their region.
func TestTune(t *testing.T) {
	c := Config{CallTimeout: 3 * time.Second, AttemptTimeout: 500 * time.Millisecond}
	got := c.tune(client.DefaultConfig("x:1"), "eu")
	if got.Region != "eu" || got.CallTimeout != 3*time.Second || got.AttemptTimeout != 500*time.Millisecond ||
		got.DownFor != time.Second || got.MaxAttempts < 4 {
		t.Errorf("tuned config %+v", got)
	}
	if err := got.Validate(); err == nil {
		t.Error("tuned config without transport security validated") // tune must not choose security
	}
}
