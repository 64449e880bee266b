package node

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiankms/meridian/hsm"
)

// meteredHSM counts HSM failures and times every call, so a failing or
// slow HSM shows on the dashboards before clients notice. It passes the
// optional interfaces (KeyOps, Enroller, Describer, domain-key rotation)
// through; a backend lacking one answers hsm.ErrUnsupported.
type meteredHSM struct {
	h       hsm.HSM
	errs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

var (
	_ hsm.HSM       = (*meteredHSM)(nil)
	_ hsm.KeyOps    = (*meteredHSM)(nil)
	_ hsm.Enroller  = (*meteredHSM)(nil)
	_ hsm.Describer = (*meteredHSM)(nil)
)

func instrumentHSM(h hsm.HSM, backend string, reg prometheus.Registerer) (*meteredHSM, error) {
	labels := prometheus.Labels{"backend": backend}
	m := &meteredHSM{
		h: h,
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
	return m, nil
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

func (m *meteredHSM) observe(op string, start time.Time, err error) {
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if k := errorKind(err); k != "" {
		m.errs.WithLabelValues(op, k).Inc()
	}
}

func (m *meteredHSM) DomainKeyVersions(ctx context.Context) ([]uint32, error) {
	return m.h.DomainKeyVersions(ctx) // cheap bookkeeping, not timed
}

func (m *meteredHSM) CurrentDomainKeyVersion(ctx context.Context) (uint32, error) {
	return m.h.CurrentDomainKeyVersion(ctx)
}

func (m *meteredHSM) Wrap(ctx context.Context, v uint32, material []byte) (_ []byte, err error) {
	defer func(t time.Time) { m.observe("wrap", t, err) }(time.Now())
	return m.h.Wrap(ctx, v, material)
}

func (m *meteredHSM) Unwrap(ctx context.Context, v uint32, wrapped []byte) (_ []byte, err error) {
	defer func(t time.Time) { m.observe("unwrap", t, err) }(time.Now())
	return m.h.Unwrap(ctx, v, wrapped)
}

func (m *meteredHSM) Random(ctx context.Context, n int) (_ []byte, err error) {
	defer func(t time.Time) { m.observe("random", t, err) }(time.Now())
	return m.h.Random(ctx, n)
}

// Health is probed twice a second by the readiness loop, so a failing
// probe counts as an error of operation "health": a missing domain key or
// a dead token shows in meridian_hsm_errors_total even with no traffic.
func (m *meteredHSM) Health(ctx context.Context) (err error) {
	defer func(t time.Time) { m.observe("health", t, err) }(time.Now())
	return m.h.Health(ctx)
}
func (m *meteredHSM) Close() error { return m.h.Close() }

func (m *meteredHSM) Info() hsm.Info {
	if d, ok := m.h.(hsm.Describer); ok {
		return d.Info()
	}
	return hsm.Info{Backend: "unknown"}
}

// RotateDomainKey makes a new DK version in this HSM (the first step of a
// cluster-wide domain-key rotation).
func (m *meteredHSM) RotateDomainKey(ctx context.Context) (uint32, error) {
	r, ok := m.h.(interface {
		RotateDomainKey(context.Context) (uint32, error)
	})
	if !ok {
		return 0, fmt.Errorf("rotate domain key: %w", hsm.ErrUnsupported)
	}
	return r.RotateDomainKey(ctx)
}

func (m *meteredHSM) keyOps() (hsm.KeyOps, error) {
	k, ok := m.h.(hsm.KeyOps)
	if !ok {
		return nil, fmt.Errorf("hsm key operations: %w", hsm.ErrUnsupported)
	}
	return k, nil
}

func (m *meteredHSM) ImportWrapped(ctx context.Context, v uint32, wrapped []byte, kind hsm.KeyKind) (_ hsm.KeyHandle, err error) {
	defer func(t time.Time) { m.observe("import", t, err) }(time.Now())
	k, err := m.keyOps()
	if err != nil {
		return nil, err
	}
	return k.ImportWrapped(ctx, v, wrapped, kind)
}

func (m *meteredHSM) EncryptGCM(ctx context.Context, h hsm.KeyHandle, nonce, pt, aad []byte) (_ []byte, err error) {
	defer func(t time.Time) { m.observe("encrypt", t, err) }(time.Now())
	k, err := m.keyOps()
	if err != nil {
		return nil, err
	}
	return k.EncryptGCM(ctx, h, nonce, pt, aad)
}

func (m *meteredHSM) DecryptGCM(ctx context.Context, h hsm.KeyHandle, nonce, sealed, aad []byte) (_ []byte, err error) {
	defer func(t time.Time) { m.observe("decrypt", t, err) }(time.Now())
	k, err := m.keyOps()
	if err != nil {
		return nil, err
	}
	return k.DecryptGCM(ctx, h, nonce, sealed, aad)
}

func (m *meteredHSM) HMAC(ctx context.Context, h hsm.KeyHandle, msg []byte) (_ []byte, err error) {
	defer func(t time.Time) { m.observe("hmac", t, err) }(time.Now())
	k, err := m.keyOps()
	if err != nil {
		return nil, err
	}
	return k.HMAC(ctx, h, msg)
}

func (m *meteredHSM) Sign(ctx context.Context, h hsm.KeyHandle, hash crypto.Hash, pss bool, digest []byte) (_ []byte, err error) {
	defer func(t time.Time) { m.observe("sign", t, err) }(time.Now())
	k, err := m.keyOps()
	if err != nil {
		return nil, err
	}
	return k.Sign(ctx, h, hash, pss, digest)
}

func (m *meteredHSM) DecryptOAEP(ctx context.Context, h hsm.KeyHandle, hash crypto.Hash, ct []byte) (_ []byte, err error) {
	defer func(t time.Time) { m.observe("decrypt_oaep", t, err) }(time.Now())
	k, err := m.keyOps()
	if err != nil {
		return nil, err
	}
	return k.DecryptOAEP(ctx, h, hash, ct)
}

func (m *meteredHSM) Destroy(ctx context.Context, h hsm.KeyHandle) error {
	k, err := m.keyOps()
	if err != nil {
		return err
	}
	return k.Destroy(ctx, h)
}

func (m *meteredHSM) enroller() (hsm.Enroller, error) {
	e, ok := m.h.(hsm.Enroller)
	if !ok {
		return nil, fmt.Errorf("hsm enrolment: %w", hsm.ErrUnsupported)
	}
	return e, nil
}

func (m *meteredHSM) TransportPublicKey(ctx context.Context) ([]byte, error) {
	e, err := m.enroller()
	if err != nil {
		return nil, err
	}
	return e.TransportPublicKey(ctx)
}

func (m *meteredHSM) ExportDomainKeys(ctx context.Context, pub []byte) (*hsm.DomainKeyBundle, error) {
	e, err := m.enroller()
	if err != nil {
		return nil, err
	}
	return e.ExportDomainKeys(ctx, pub)
}

func (m *meteredHSM) ImportDomainKeys(ctx context.Context, b *hsm.DomainKeyBundle) error {
	e, err := m.enroller()
	if err != nil {
		return err
	}
	return e.ImportDomainKeys(ctx, b)
}
