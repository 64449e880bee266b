package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/chaos/checker"
	"github.com/meridiankms/meridian/client"
)

// ChaosMarker is the build-metadata suffix a node started with chaos
// enabled advertises in its Members build_version ("1.4.0+chaos"). The
// runner refuses a cluster any of whose members lacks it, unless forced.
const ChaosMarker = "+chaos"

// AdvertisesChaos reports whether a build_version carries ChaosMarker.
func AdvertisesChaos(buildVersion string) bool {
	return strings.Contains(buildVersion, ChaosMarker)
}

// pinned is a set of single-node clients, one per live node: each call
// goes to that node alone, so each replica answers for itself. It serves
// the checker's RPO checks and the runner's convergence wait.
type pinned struct {
	mu      sync.Mutex
	ids     []string
	clients map[string]*client.Client
}

var _ checker.Cluster = (*pinned)(nil)

// pinAll connects one single-node client to every live, unfrozen node.
func pinAll(ctx context.Context, h Harness) (*pinned, error) {
	nodes, err := h.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	p := &pinned{clients: map[string]*client.Client{}}
	for _, n := range nodes {
		if !n.Alive || n.Frozen {
			continue
		}
		cfg := h.ClientConfig(n.Region)
		cfg.Addrs, cfg.DisableDiscovery, cfg.MaxAttempts = []string{n.APIAddr}, true, 1
		cfg.HedgeAfter, cfg.CallTimeout, cfg.AttemptTimeout = 0, 10*time.Second, 10*time.Second
		cl, err := client.New(ctx, cfg)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("connect to %s (%s): %w", n.ID, n.APIAddr, err)
		}
		p.ids = append(p.ids, n.ID)
		p.clients[n.ID] = cl
	}
	if len(p.ids) == 0 {
		return nil, fmt.Errorf("%w: no live node to check", ErrUnknownNode)
	}
	return p, nil
}

func (p *pinned) Close() {
	for _, cl := range p.clients {
		cl.Close()
	}
}

// Nodes implements checker.Cluster.
func (p *pinned) Nodes() []string { return append([]string(nil), p.ids...) }

func (p *pinned) client(node string) (*client.Client, error) {
	cl, ok := p.clients[node]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownNode, node)
	}
	return cl, nil
}

// Describe implements checker.Cluster.
func (p *pinned) Describe(ctx context.Context, node, keyID string) (checker.KeyInfo, error) {
	cl, err := p.client(node)
	if err != nil {
		return checker.KeyInfo{}, err
	}
	res, err := cl.DescribeKey(ctx, &apiv1.DescribeKeyRequest{KeyId: keyID})
	if err != nil {
		return checker.KeyInfo{}, err
	}
	md := res.GetKeyMetadata()
	return checker.KeyInfo{State: strings.TrimPrefix(md.GetKeyState().String(), "KEY_STATE_"),
		Version: int(md.GetCurrentKeyVersion())}, nil
}

// Decrypt implements checker.Cluster.
func (p *pinned) Decrypt(ctx context.Context, node string, ct []byte, ec map[string]string) ([]byte, error) {
	cl, err := p.client(node)
	if err != nil {
		return nil, err
	}
	res, err := cl.Decrypt(ctx, &apiv1.DecryptRequest{CiphertextBlob: ct, EncryptionContext: ec})
	if err != nil {
		return nil, err
	}
	return res.GetPlaintext(), nil
}

// members asks node for the membership view.
func (p *pinned) members(ctx context.Context, node string) (*apiv1.MembersResponse, error) {
	cl, err := p.client(node)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return cl.Members(ctx, &apiv1.MembersRequest{})
}

// converge waits until every pinned node names the same leader and has
// applied at least the index the leader reported when the wait began (so
// every acknowledged write is on every node before the checks).
func (p *pinned) converge(ctx context.Context) error {
	var target uint64
	var last error
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok, err := p.convergedOnce(ctx, &target); ok {
			return nil
		} else if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster did not converge: %w (last: %w)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

var errNotConverged = errors.New("replicas disagree or lag")

func (p *pinned) convergedOnce(ctx context.Context, target *uint64) (bool, error) {
	leader := ""
	applied := map[string]uint64{}
	for _, id := range p.ids {
		res, err := p.members(ctx, id)
		if err != nil {
			return false, fmt.Errorf("members from %s: %w", id, err)
		}
		if res.GetLeaderId() == "" || (leader != "" && res.GetLeaderId() != leader) {
			return false, fmt.Errorf("%w: %s sees leader %q, others %q", errNotConverged, id, res.GetLeaderId(), leader)
		}
		leader = res.GetLeaderId()
		applied[id] = res.GetAppliedIndex()
	}
	if *target == 0 {
		if idx, ok := applied[leader]; ok {
			*target = idx
		} else {
			for _, a := range applied {
				*target = max(*target, a)
			}
		}
	}
	for id, a := range applied {
		if a < *target {
			return false, fmt.Errorf("%w: %s applied %d < %d", errNotConverged, id, a, *target)
		}
	}
	return true, nil
}

// checkChaosEnabled refuses a cluster not started for chaos unless force.
func checkChaosEnabled(ctx context.Context, h Harness, force bool) error {
	if force {
		return nil
	}
	ok, err := h.ChaosEnabled(ctx)
	if err != nil {
		return fmt.Errorf("ask whether %s cluster has chaos enabled: %w", h.Name(), err)
	}
	if !ok {
		return fmt.Errorf("%w: its nodes do not advertise %q in their build version. Start the servers with "+
			"`meridian server --chaos` (or the demo with `meridian demo --chaos`), or pass --force "+
			"(Options.Force) to run anyway, knowing this cluster will be disrupted", ErrNotChaosEnabled, ChaosMarker)
	}
	return nil
}
