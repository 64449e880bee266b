package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/cluster/netsim"
	"github.com/meridiankms/meridian/fsm"
	"github.com/meridiankms/meridian/hsm"
	"github.com/meridiankms/meridian/identity"
	"github.com/meridiankms/meridian/keystore"
	"github.com/meridiankms/meridian/transport"
)

// Compile-time checks that the parts fit the seams between them.
var (
	_ keystore.Applier = (*cluster.Node)(nil)
)

// readinessInterval is how often the gRPC health status is refreshed.
const readinessInterval = 500 * time.Millisecond

// Node is one running Meridian node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	hsm      hsm.HSM // the backend, HSMWrapper's, instrumented: what everything uses
	fsm      *fsm.FSM
	cluster  *cluster.Node
	store    *keystore.Store
	server   *transport.Server
	metrics  *transport.MetricsServer
	registry *prometheus.Registry
	// tls is the node's TLS material (nil under --insecure): one source
	// for every listener and dialer, reloaded in place.
	tls *identity.Source
	// clusterSrv serves the cluster plane (node-to-node calls) on its own
	// listener; clients reach only server.
	clusterSrv *grpc.Server

	apiAddr, clusterAddr, metricsAddr string
	// simRaft is the simulated Raft connection layer (Config.Sim only).
	// cluster.Close closes it (as its transport) before Raft, so a kill
	// inside a partition does not wait for replication calls that the
	// partition holds; closed here too when Start fails before cluster
	// owns it.
	simRaft *netsim.StreamLayer

	// hsmProblem is "" while the HSM answered the last health probe, else
	// a caller-safe reason; the keystore refuses crypto while it is set.
	hsmProblem atomic.Value

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start builds and starts a node from cfg. ctx bounds start-up only (HSM
// open, join); the node runs until Close.
func Start(ctx context.Context, cfg Config) (_ *Node, err error) {
	// A handed-in cluster listener is Start's from here: closed on any
	// failure before listen takes it over (after that, closeLis does),
	// so a failed start never keeps its port.
	listening := false
	defer func() {
		if err != nil && !listening && cfg.ClusterListener != nil {
			cfg.ClusterListener.Close()
		}
	}()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: log.With("node", cfg.NodeID), stop: make(chan struct{})}
	defer func() {
		if err != nil {
			n.shutdown()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if cfg.TLS.Enabled() {
		// First: wrong TLS files are a configuration error, found before
		// the HSM opens or a port is taken.
		if n.tls, err = openTLS(cfg, n.log); err != nil {
			return nil, err
		}
	}
	n.registry = prometheus.NewRegistry()
	raw, err := openHSM(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.HSMWrapper != nil {
		raw = cfg.HSMWrapper(raw)
	}
	if n.hsm, err = instrumentHSM(raw, cfg.HSM.Backend, n.registry); err != nil {
		raw.Close()
		return nil, err
	}
	n.fsm = fsm.New(log.With("component", "fsm"))

	lis, clis, err := n.listen()
	listening = true // listen closed it on failure; closeLis does from here
	if err != nil {
		return nil, err
	}
	closeLis := func() {
		lis.Close()
		clis.Close()
	}
	advertise := cmp.Or(cfg.AdvertiseAPIAddr, n.apiAddr)
	advertiseCluster := cmp.Or(cfg.AdvertiseClusterAddr, n.clusterAddr)
	if cfg.AdvertiseClusterAddr == "" && UnspecifiedHost(advertiseCluster) {
		// A handed-in listener bound to every interface (Validate saw
		// only the address string).
		closeLis()
		return nil, fmt.Errorf("%w: the cluster listener %s binds every interface: set --advertise-cluster-addr", ErrConfig, advertiseCluster)
	}

	ccfg, err := clusterConfig(cfg, advertise, advertiseCluster, n.log)
	if err == nil && n.tls != nil {
		err = setClusterTLS(&ccfg, n.tls)
	}
	if err != nil {
		closeLis()
		return nil, err
	}
	ccfg.Enrolment = exporterFor(n.hsm)
	ccfg.DomainKeys = domainKeyHolder{b: operatorBackend{h: n.hsm}, log: n.log}
	if cfg.Sim != nil {
		host := cfg.Sim.Host(cfg.Region, cfg.NodeID)
		host.Register(advertise)
		host.Register(advertiseCluster) // node-to-node gRPC: forwarding, joins, peer calls
		if n.simRaft, err = host.StreamLayer(cfg.RaftAddr); err != nil {
			closeLis()
			return nil, fmt.Errorf("listen for raft on %s: %w", cfg.RaftAddr, err)
		}
		ccfg.StreamLayer = n.simRaft
		ccfg.DialOptions = append(ccfg.DialOptions, host.DialOption())
		ccfg.Gossip.Transport = host.GossipTransport
	}
	if n.cluster, err = cluster.New(ctx, ccfg, n.fsm); err != nil {
		closeLis()
		return nil, err
	}

	kcfg := keystore.DefaultConfig()

	kcfg.Logger, kcfg.NodeID = log, cfg.NodeID
	// How long since this node heard from the leader: the staleness that a
	// key's max_staleness bounds (0 on the leader, negative if never).
	kcfg.Staleness = n.cluster.LastContact
	kcfg.CryptoReady = n.cryptoReady
	if cfg.SchedulerInterval != 0 {
		kcfg.SchedulerInterval = cfg.SchedulerInterval
	}
	if n.store, err = keystore.New(kcfg, n.fsm, n.hsm, n.cluster); err != nil {
		closeLis()
		return nil, err
	}

	if err := n.startServers(lis, clis); err != nil {
		return nil, err
	}
	if len(cfg.Join) > 0 {
		if err := n.join(ctx); err != nil {
			return nil, err
		}
	}
	n.wg.Add(2)
	go n.watchReadiness()
	go n.keepDomainKeysInSync()
	if n.tls != nil {
		n.wg.Add(1)
		go n.watchTLS()
	}
	n.log.Info("node started", "version", cfg.BuildVersion, "api", n.apiAddr, "cluster", n.clusterAddr, "raft", n.cluster.RaftAddr(),
		"metrics", n.metricsAddr, "region", cfg.Region, "hsm", cfg.HSM.Backend, "tls", n.tls != nil)
	return n, nil
}

// listen opens the API listener and takes (or opens) the cluster plane's,
// first, so the advertised addresses are the real ones even with port 0.
func (n *Node) listen() (api, clusterLis net.Listener, err error) {
	cfg := n.cfg
	clusterLis = cfg.ClusterListener
	if clusterLis == nil {
		if clusterLis, err = net.Listen("tcp", cfg.ClusterAddr); err != nil {
			return nil, nil, fmt.Errorf("listen cluster %s: %w", cfg.ClusterAddr, err)
		}
	}
	if api, err = net.Listen("tcp", cfg.APIAddr); err != nil {
		clusterLis.Close()
		return nil, nil, fmt.Errorf("listen api %s: %w", cfg.APIAddr, err)
	}
	n.apiAddr, n.clusterAddr = api.Addr().String(), clusterLis.Addr().String()
	return api, clusterLis, nil
}

// clusterConfig maps the node's config onto the cluster package's.
func clusterConfig(cfg Config, apiAddr, clusterAddr string, log *slog.Logger) (cluster.Config, error) {
	c := cluster.DefaultConfig()
	c.NodeID, c.Region, c.Zone, c.DataDir = cfg.NodeID, cfg.Region, cfg.Zone, cfg.DataDir
	c.RaftBindAddr, c.RaftAdvertiseAddr = cfg.RaftAddr, cfg.AdvertiseRaftAddr
	c.APIAddr, c.ClusterAddr, c.Bootstrap = apiAddr, clusterAddr, cfg.Bootstrap
	c.BuildVersion, c.Logger = cfg.BuildVersion, log
	if cfg.WANRTT > 0 {
		cluster.WANTimings(cfg.WANRTT).Apply(&c)
	}
	setDuration(&c.HeartbeatTimeout, cfg.HeartbeatTimeout)
	setDuration(&c.ElectionTimeout, cfg.ElectionTimeout)
	setDuration(&c.LeaderLeaseTimeout, cfg.LeaderLeaseTimeout)
	if cfg.SnapshotThreshold > 0 {
		c.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.TrailingLogs > 0 {
		c.TrailingLogs = cfg.TrailingLogs
	}
	c.Gossip = cluster.GossipConfig{BindAddr: cfg.GossipAddr, AdvertiseAddr: cfg.AdvertiseGossipAddr,
		Key: cfg.GossipKey, Insecure: cfg.GossipInsecure, LAN: cfg.GossipLAN, Seeds: cfg.GossipSeeds,
		RTT: cfg.WANRTT}
	if cfg.TargetVoters > 0 {
		c.Autopilot.TargetVoters = cfg.TargetVoters
	}
	setDuration(&c.Autopilot.DeadServerGrace, cfg.DeadServerGrace)
	setDuration(&c.Autopilot.StabilizationTime, cfg.StabilizationTime)
	c.Autopilot.PreferredLeaderRegion = cfg.PreferredLeaderRegion
	return c, nil
}

func setDuration(dst *time.Duration, v time.Duration) {
	if v > 0 {
		*dst = v
	}
}

// startServers registers metrics and starts the client API's gRPC server
// on lis, the cluster plane's on clis, and the operator HTTP server.
func (n *Node) startServers(lis, clis net.Listener) error {
	closeLis := func() {
		lis.Close()
		clis.Close()
	}
	n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := transport.NewMetrics(n.registry)
	if err != nil {
		closeLis()
		return err
	}
	if err := transport.RegisterNodeInfo(n.registry, n.cfg.NodeID, n.cfg.Region); err != nil {
		closeLis()
		return err
	}
	observe, err := clusterPlaneMetrics(n.registry)
	if err != nil {
		closeLis()
		return err
	}
	n.registry.MustRegister(transport.NewRaftCollector(transport.RaftStatsFunc(n.raftStatus)),
		transport.NewMembersCollector(transport.MembershipFunc(n.members)))

	tcfg := transport.DefaultConfig()
	tcfg.ListenAddr, tcfg.MetricsListenAddr = n.apiAddr, n.cfg.MetricsAddr
	// The cluster plane admits node certificates only (mutual TLS); the
	// API verifies a client certificate when one is given, and a caller
	// without one is anonymous. The metrics endpoint stays plaintext:
	// Prometheus scrapes usually run inside the host's network.
	var clusterOpts []grpc.ServerOption
	if n.tls != nil {
		if tcfg.TLS, err = n.tls.ServerConfig(identity.ClientAPI); err != nil {
			closeLis()
			return err
		}
		creds, err := n.tls.ServerCredentials(identity.ClusterPlane)
		if err != nil {
			closeLis()
			return err
		}
		clusterOpts = append(clusterOpts, grpc.Creds(creds))
	}
	if n.server, err = transport.NewServer(tcfg, n.store, transport.WithLogger(n.log), transport.WithMetrics(m),
		transport.WithNodeID(n.cfg.NodeID), transport.WithConsistency(n.fsm, n.cfg.ConsistencyMaxWait),
		transport.WithMembership(transport.MembershipFunc(n.members)),
		transport.WithOperator(operatorBackend{ks: n.store, h: n.hsm, c: n.cluster})); err != nil {
		closeLis()
		return err
	}
	// The cluster plane: its own server, listener and interceptors; with
	// TLS, only node certificates of the cluster pass its handshake.
	n.clusterSrv = cluster.NewServer(n.log, observe, clusterOpts...)
	n.cluster.Register(n.clusterSrv)
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		if err := n.server.Serve(lis); err != nil {
			n.log.Error("grpc server stopped", "err", err)
		}
	}()
	go func() {
		defer n.wg.Done()
		if err := n.clusterSrv.Serve(clis); err != nil {
			n.log.Error("cluster-plane server stopped", "err", err)
		}
	}()

	if n.cfg.MetricsAddr == "" {
		return nil
	}
	mlis, err := net.Listen("tcp", n.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen metrics %s: %w", n.cfg.MetricsAddr, err)
	}
	n.metricsAddr = mlis.Addr().String()
	if n.metrics, err = transport.NewMetricsServer(n.registry, n.Ready, n.log); err != nil {
		mlis.Close()
		return err
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.metrics.Serve(mlis); err != nil {
			n.log.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}

func (n *Node) raftStatus() transport.RaftStatus {
	s := n.cluster.Stats()
	st := transport.RaftStatus{State: s.State, Term: s.Term, CommitIndex: s.CommitIndex,
		AppliedIndex: s.FSMAppliedIndex, LastContact: s.LastContact, LeaderChanges: s.LeaderChanges}
	// The two indexes are read at different moments; never report negative lag.
	if s.CommitIndex > s.FSMAppliedIndex {
		st.ApplyLag = s.CommitIndex - s.FSMAppliedIndex
	}
	return st
}

// ErrNotReady explains why a node should not receive traffic yet.
var ErrNotReady = errors.New("node not ready")

// Ready reports nil when the node can serve: a Raft leader is known and the
// HSM answers. A node that lost its leader still serves the data plane, but
// it is reported unready so load balancers prefer nodes in the majority.
func (n *Node) Ready(ctx context.Context) error {
	if !n.leaderKnown() {
		return fmt.Errorf("%w: no raft leader known", ErrNotReady)
	}
	if err := n.hsm.Health(ctx); err != nil {
		return fmt.Errorf("%w: hsm: %w", ErrNotReady, err)
	}
	return nil
}

func (n *Node) leaderKnown() bool {
	id, _ := n.cluster.Leader()
	return id != ""
}

// readyNow is Ready without a fresh HSM probe: it reuses the last one of
// watchReadiness, so per-request callers do not each round-trip the HSM.
func (n *Node) readyNow() bool {
	return n.leaderKnown() && n.cryptoReady() == nil
}

// watchReadiness mirrors Ready into the gRPC health service.
func (n *Node) watchReadiness() {
	defer n.wg.Done()
	t := time.NewTicker(readinessInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), readinessInterval)
		herr := n.hsm.Health(ctx)
		if prev, _ := n.hsmProblem.Load().(string); prev != hsmProblem(herr) {
			if herr != nil {
				n.log.Warn("hsm unhealthy: refusing cryptography until it recovers", "err", herr)
			} else if prev != "" {
				n.log.Info("hsm healthy again")
			}
		}
		cancel()
		n.hsmProblem.Store(hsmProblem(herr))
		ready := herr == nil && n.leaderKnown()
		n.server.SetServing(ready)
		n.cluster.SetHealthy(ready) // advertised in gossip for clients' routing
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

// hsmProblem turns a health-probe error into a caller-safe reason.
func hsmProblem(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, hsm.ErrNoDomainKey):
		return "its HSM does not hold the cluster domain key (not enrolled yet)"
	}
	return "its HSM is unavailable"
}

// cryptoReady is the keystore's gate: nil while the HSM is healthy.
func (n *Node) cryptoReady() error {
	if p, _ := n.hsmProblem.Load().(string); p != "" {
		return errors.New(p)
	}
	return nil
}

// APIAddr is the address the gRPC API listens on.
func (n *Node) APIAddr() string { return n.apiAddr }

// ClusterAddr is the address the cluster plane (node-to-node gRPC)
// listens on; what --join names when AdvertiseClusterAddr is unset.
func (n *Node) ClusterAddr() string { return n.clusterAddr }

// MetricsAddr is the operator HTTP address ("" when disabled).
func (n *Node) MetricsAddr() string { return n.metricsAddr }

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Region is the node's region label.
func (n *Node) Region() string { return n.cfg.Region }

// Cluster exposes the Raft node for status commands and tests.
func (n *Node) Cluster() *cluster.Node { return n.cluster }

// FSM exposes the node's replica for tests and status.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// HSM exposes the node's HSM for tests and operator commands.
func (n *Node) HSM() hsm.HSM { return n.hsm }

// Registry is the node's Prometheus registry.
func (n *Node) Registry() *prometheus.Registry { return n.registry }

// Close stops serving, then stops the keystore, Raft and the HSM, in that
// order, so no request is cut off half-way through a write.
func (n *Node) Close() error {
	n.closeOnce.Do(n.shutdown)
	return n.closeErr
}

func (n *Node) shutdown() {
	close(n.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n.server != nil {
		n.server.SetServing(false)
		n.server.Stop(ctx)
	}
	if n.clusterSrv != nil {
		stopGRPC(ctx, n.clusterSrv)
	}
	if n.metrics != nil {
		n.metrics.Stop(ctx)
	}
	n.wg.Wait()
	var errs []error
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if n.cluster != nil {
		errs = append(errs, n.cluster.Close())
	}
	if n.simRaft != nil {
		_ = n.simRaft.Close() // a no-op unless cluster.New failed
	}
	if n.hsm != nil {
		errs = append(errs, n.hsm.Close())
	}
	n.closeErr = errors.Join(errs...)
}

// stopGRPC stops s gracefully, cutting the connections left when ctx ends.
func stopGRPC(ctx context.Context, s *grpc.Server) {
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
		<-done
	}
}

// CloseAll closes nodes that stop together, as the demo's do: it first
// tells each that it is closing, so that none reports the others'
// departure (connections refused or cut) as an error, then closes them
// all at once. The errors are joined, each naming its node.
func CloseAll(nodes ...*Node) error {
	for _, n := range nodes {
		if n.cluster != nil {
			n.cluster.BeginClose()
		}
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Close(); err != nil {
				errs[i] = fmt.Errorf("close node %s: %w", n.ID(), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// SoftHSMPath is the sealed domain-key file of a soft-HSM node.
func (n *Node) SoftHSMPath() string { return n.cfg.HSM.SoftPath }
