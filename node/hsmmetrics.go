package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiankms/meridian/hsm"
)

// hsmMetrics counts HSM failures and times calls, so a failing or slow
// HSM shows on the dashboards before clients notice. instrumentHSM puts it
// around the node's HSM with hsm.Intercept, so calls through the HSM's
// capabilities (key operations, enrolment, domain-key rotation, mechanism
// listing) are measured too, and the instrumented HSM has exactly the
// capabilities of the HSM it wraps.
type hsmMetrics struct {
	errs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

func instrumentHSM(h hsm.HSM, backend string, reg prometheus.Registerer) (hsm.HSM, error) {
	labels := prometheus.Labels{"backend": backend}
	m := &hsmMetrics{
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_hsm_errors_total", ConstLabels: labels,
			Help: "HSM calls that failed for a reason other than the caller's input, by operation and kind.",
		}, []string{"operation", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "meridian_hsm_operation_duration_seconds", ConstLabels: labels,
			Help:    "Latency of HSM calls by operation.",
			Buckets: prometheus.ExponentialBuckets(5e-6, 4, 10), // 5 us .. 1.3 s
		}, []string{"operation"}),
	}
	for _, c := range []prometheus.Collector{m.errs, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register hsm metrics: %w", err)
		}
	}
	return hsm.Intercept(h, m.intercept), nil
}

// errorKind classifies an HSM error; "" means the caller's input or context
// was at fault, which says nothing about the HSM's health.
func errorKind(err error) string {
	switch {
	case err == nil, errors.Is(err, hsm.ErrInvalidInput), errors.Is(err, hsm.ErrUnwrap),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ""
	case errors.Is(err, hsm.ErrNoDomainKey):
		return "no_domain_key"
	case errors.Is(err, hsm.ErrUnavailable), errors.Is(err, hsm.ErrClosed):
		return "unavailable"
	case errors.Is(err, hsm.ErrHandleInvalid):
		return "handle_invalid"
	case errors.Is(err, hsm.ErrUnsupported):
		return "unsupported"
	}
	return "other"
}

// timed says whether op is measured. Not: cheap bookkeeping (the DK
// version list is cached), and Destroy, whose "handle already gone" after
// an HSM restart is the outcome the caller wanted, not an HSM failure.
func timed(op hsm.Op) bool {
	switch op {
	case hsm.OpDomainKeyVersions, hsm.OpCurrentDomainKeyVersion, hsm.OpDestroy:
		return false
	}
	return true
}

// intercept times op and counts its failure by kind. Health is probed
// twice a second by the readiness loop, so a failing probe counts as an
// error of operation "health": a missing domain key or a dead token shows
// in meridian_hsm_errors_total even with no traffic.
func (m *hsmMetrics) intercept(ctx context.Context, op hsm.Op, call func(context.Context) error) error {
	if !timed(op) {
		return call(ctx)
	}
	start := time.Now()
	err := call(ctx)
	m.latency.WithLabelValues(string(op)).Observe(time.Since(start).Seconds())
	if k := errorKind(err); k != "" {
		m.errs.WithLabelValues(string(op), k).Inc()
	}
	return err
}
