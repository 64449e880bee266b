package chaos

import (
	"context"
	"crypto/tls"
	"fmt"
	"sort"
	"time"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
)

// RemoteConfig names a running cluster by address.
type RemoteConfig struct {
	// Addrs are API addresses of some of its nodes (the rest are found
	// through Members).
	Addrs []string
	// TLS, or Insecure for a plaintext cluster (exactly one).
	TLS      *tls.Config
	Insecure bool
}

// Remote is the address harness: any cluster reachable by address. It
// cannot kill, freeze, partition or slow a cluster it does not run, so it
// has no capabilities and refuses every infrastructure fault with
// ErrUnsupported; the scenarios it can run are those made of client-side
// acts alone (disable-key). It reads the membership through the API.
type Remote struct {
	cfg RemoteConfig
	cl  *client.Client
}

var _ Harness = (*Remote)(nil)

// NewRemote connects to the cluster.
func NewRemote(ctx context.Context, cfg RemoteConfig) (*Remote, error) {
	ccfg := client.DefaultConfig(cfg.Addrs...)
	ccfg.TLS, ccfg.Insecure = cfg.TLS, cfg.Insecure
	cl, err := client.New(ctx, ccfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %v: %w", cfg.Addrs, err)
	}
	return &Remote{cfg: cfg, cl: cl}, nil
}

// Name implements Harness.
func (r *Remote) Name() string { return "remote" }

// Capabilities implements Harness: none.
func (r *Remote) Capabilities() Capability { return 0 }

func (r *Remote) members(ctx context.Context) (*apiv1.MembersResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := r.cl.Members(ctx, &apiv1.MembersRequest{})
	if err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	return res, nil
}

// ChaosEnabled implements Harness: every member must advertise
// ChaosMarker in its build version.
func (r *Remote) ChaosEnabled(ctx context.Context) (bool, error) {
	res, err := r.members(ctx)
	if err != nil {
		return false, err
	}
	if len(res.GetMembers()) == 0 {
		return false, nil
	}
	for _, m := range res.GetMembers() {
		if !AdvertisesChaos(m.GetBuildVersion()) {
			return false, nil
		}
	}
	return true, nil
}

// Nodes implements Harness from the membership view.
func (r *Remote) Nodes(ctx context.Context) ([]NodeInfo, error) {
	res, err := r.members(ctx)
	if err != nil {
		return nil, err
	}
	var out []NodeInfo
	for _, m := range res.GetMembers() {
		out = append(out, NodeInfo{ID: m.GetNodeId(), Region: m.GetRegion(), APIAddr: m.GetApiAddr(),
			Alive: m.GetStatus() == apiv1.MemberStatus_MEMBER_STATUS_ALIVE})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Leader implements Harness.
func (r *Remote) Leader(ctx context.Context) (string, error) {
	res, err := r.members(ctx)
	if err != nil {
		return "", err
	}
	if res.GetLeaderId() == "" {
		return "", ErrNoLeader
	}
	return res.GetLeaderId(), nil
}

func unsupported(op string) error {
	return fmt.Errorf("%s on a cluster given by address: %w (use the in-process, multi-process or docker harness)", op, ErrUnsupported)
}

// Kill implements Harness: unsupported.
func (r *Remote) Kill(context.Context, string) error { return unsupported("kill") }

// Restart implements Harness: unsupported.
func (r *Remote) Restart(context.Context, string) error { return unsupported("restart") }

// Freeze implements Harness: unsupported.
func (r *Remote) Freeze(context.Context, string) error { return unsupported("freeze") }

// Thaw implements Harness: unsupported.
func (r *Remote) Thaw(context.Context, string) error { return unsupported("thaw") }

// Partition implements Harness: unsupported.
func (r *Remote) Partition(context.Context, string, string, bool) error {
	return unsupported("partition")
}

// Heal implements Harness: unsupported.
func (r *Remote) Heal(context.Context) error { return unsupported("heal") }

// SetLatency implements Harness: unsupported.
func (r *Remote) SetLatency(context.Context, string, string, time.Duration, time.Duration) error {
	return unsupported("latency")
}

// FailHSM implements Harness: unsupported.
func (r *Remote) FailHSM(context.Context, string, bool) error { return unsupported("fail-hsm") }

// Wipe implements Harness: unsupported.
func (r *Remote) Wipe(context.Context, string) error { return unsupported("wipe") }

// ClientConfig implements Harness.
func (r *Remote) ClientConfig(region string) client.Config {
	cfg := client.DefaultConfig(r.cfg.Addrs...)
	cfg.TLS, cfg.Insecure, cfg.Region = r.cfg.TLS, r.cfg.Insecure, region
	return cfg
}

// Close implements Harness.
func (r *Remote) Close() error { return r.cl.Close() }
