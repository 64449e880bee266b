package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// errConnFailed is a connection that could not be established right now.
var errConnFailed = errors.New("connection failed")

// maxMembersSources bounds how many known nodes a refresh asks before
// falling back to the seeds.
const maxMembersSources = 3

// background runs discovery and RTT probing until ctx ends. One goroutine
// does both so Close has exactly one thing to wait for.
func (c *Client) background(ctx context.Context) {
	probe := time.NewTicker(c.cfg.ProbeInterval)
	defer probe.Stop()
	refresh := time.NewTicker(c.cfg.RefreshInterval)
	defer refresh.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-probe.C:
			c.probeAll(ctx, probeSamples)
		case <-refresh.C:
			c.refresh(ctx)
			last = time.Now()
		case <-c.kick:
			// A failed call asked for a refresh; coalesce bursts.
			if sleep(ctx, time.Until(last.Add(MinRefreshGap))) != nil {
				return
			}
			c.refresh(ctx)
			last = time.Now()
		}
	}
}

// refresh fetches the member list (unless discovery is off) and probes.
func (c *Client) refresh(ctx context.Context) {
	if !c.cfg.DisableDiscovery {
		_ = c.discover(ctx) // on failure the current node set stays; the next round retries
	}
	c.probeAll(ctx, probeSamples)
}

// discover asks the best few known nodes, then the seeds, for the members,
// and applies the first non-empty answer.
func (c *Client) discover(ctx context.Context) error {
	var errs []error
	v := c.router.current()
	for i := 0; i < len(v.routes) && i < maxMembersSources; i++ {
		if c.tryMembers(ctx, v.routes[i].n.api, &errs) {
			return nil
		}
	}
	for _, a := range c.cfg.Addrs {
		if c.router.has(a) {
			continue // asked above, or about to be: nodes are asked by rank
		}
		conn, err := c.dial(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ok := c.tryMembers(ctx, apiv1.NewKeyManagementClient(conn), &errs)
		_ = conn.Close()
		if ok {
			return nil
		}
	}
	return fmt.Errorf("discover members: %w", errors.Join(errs...))
}

func (c *Client) tryMembers(ctx context.Context, api apiv1.KeyManagementClient, errs *[]error) bool {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.probeTimeout())
	defer cancel()
	resp, err := api.Members(ctx, &apiv1.MembersRequest{})
	if err != nil {
		*errs = append(*errs, err)
		return false
	}
	ms := usableMembers(resp)
	if len(ms) == 0 {
		*errs = append(*errs, fmt.Errorf("node %s listed no routable members", resp.GetServedBy()))
		return false
	}
	c.router.applyMembers(ms)
	return true
}

// Probe samples: New has one chance to rank the nodes before the first
// call, so it takes more; periodic rounds add to the EWMA anyway.
const (
	initialProbeSamples = 3
	probeSamples        = 2
)

// probeAll measures every node at once, so one slow node delays no other.
func (c *Client) probeAll(ctx context.Context, samples int) {
	var wg sync.WaitGroup
	for _, n := range c.router.all() {
		wg.Go(func() { c.probe(ctx, n, samples) })
	}
	wg.Wait()
	c.router.rebuild()
}

// probe times gRPC health checks over the node's warm connection and keeps
// the quickest of samples: delays from a busy client or server only ever add
// time, so the minimum is the best estimate of the distance. Any
// answer is a round trip; NOT_SERVING also makes the node unhealthy, and
// Unimplemented or NotFound (no health service) says nothing about health.
// A failed probe keeps the node down until the next probe round.
func (c *Client) probe(ctx context.Context, n *node, samples int) {
	pctx, cancel := context.WithTimeout(ctx, c.cfg.probeTimeout())
	defer cancel()
	err := warm(pctx, n.conn)
	var resp *healthpb.HealthCheckResponse
	var rtt time.Duration
	for i := 0; i < samples && err == nil; i++ {
		start := time.Now()
		resp, err = n.health.Check(pctx, &healthpb.HealthCheckRequest{Service: apiv1.KeyManagement_ServiceDesc.ServiceName})
		if d := time.Since(start); i == 0 || d < rtt {
			rtt = d
		}
	}
	switch status.Code(err) {
	case codes.OK, codes.Unimplemented, codes.NotFound:
		c.router.observeProbe(n, rtt, resp != nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING)
		n.probeDownUntil.Store(0)
	default:
		if ctx.Err() == nil { // not Close cancelling the probe
			n.probeDownUntil.Store(time.Now().Add(c.cfg.ProbeInterval + c.cfg.probeTimeout()).UnixNano())
		}
	}
}

// warm waits (bounded by ctx) until conn is connected, so a probe times a
// round trip and not a TCP and TLS handshake. A connection that fails at once
// (refused) is reported at once.
func warm(ctx context.Context, conn *grpc.ClientConn) error {
	for {
		switch s := conn.GetState(); s {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure, connectivity.Shutdown:
			conn.Connect() // schedule a reconnect for the next probe
			return errConnFailed
		case connectivity.Idle:
			conn.Connect()
		}
		s := conn.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if !conn.WaitForStateChange(ctx, s) {
			return ctx.Err()
		}
	}
}
