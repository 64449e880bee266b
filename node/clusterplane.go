package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/meridiankms/meridian/cluster"
	"github.com/meridiankms/meridian/transport"
)

// clusterPlaneMetrics registers the cluster plane's own request metrics,
// apart from the client API's meridian_requests_total (whose outcomes are
// client exceptions): meridian_cluster_rpcs_total{method,code} and
// meridian_cluster_rpc_duration_seconds{method}, method being
// "meridian.cluster.v1.Cluster/Apply" and the like.
func clusterPlaneMetrics(reg prometheus.Registerer) (cluster.PlaneObserver, error) {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_cluster_rpcs_total",
		Help: "Node-to-node calls served on the cluster plane, by method and gRPC status code.",
	}, []string{"method", "code"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "meridian_cluster_rpc_duration_seconds",
		Help:    "Time to serve a node-to-node call on the cluster plane, by method, whatever its outcome.",
		Buckets: prometheus.ExponentialBucketsRange(100e-6, 10, 16),
	}, []string{"method"})
	for _, c := range []prometheus.Collector{calls, dur} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return func(method string, code codes.Code, elapsed time.Duration) {
		calls.WithLabelValues(method, code.String()).Inc()
		dur.WithLabelValues(method).Observe(elapsed.Seconds())
	}, nil
}

// domainKeyHolder serves this node's HSM to other members' domain-key
// calls over the cluster plane (cluster.DomainKeyHolder). Its failures
// travel to the calling member and from there to an operator, so they are
// mapped here as the client API maps them (transport.StatusOf): a
// caller-safe message, the internal detail kept in this node's log.
type domainKeyHolder struct {
	b   operatorBackend // its HSM only: the keystore is not needed here
	log *slog.Logger
}

var _ cluster.DomainKeyHolder = domainKeyHolder{}

func (d domainKeyHolder) DomainKeyVersions(ctx context.Context) ([]uint32, error) {
	vs, err := d.b.h.DomainKeyVersions(ctx)
	return vs, transport.StatusOf(ctx, d.log, "DomainKeys/Versions", operatorHSMErr("list domain key versions", err))
}

func (d domainKeyHolder) TransportPublicKey(ctx context.Context) ([]byte, error) {
	pub, err := d.b.TransportPublicKey(ctx)
	return pub, transport.StatusOf(ctx, d.log, "DomainKeys/Sync", err)
}

func (d domainKeyHolder) ExportDomainKeys(ctx context.Context, pub []byte) ([]byte, error) {
	b, err := d.b.ExportDomainKeys(ctx, pub)
	return b, transport.StatusOf(ctx, d.log, "DomainKeys/Export", err)
}

func (d domainKeyHolder) ImportDomainKeys(ctx context.Context, bundle []byte) error {
	return transport.StatusOf(ctx, d.log, "DomainKeys/Sync", d.b.ImportDomainKeys(ctx, bundle))
}
