package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadinessFunc reports nil when this node should receive traffic (for
// example: a leader is known and the HSM answers), or why not. Its message
// is shown on /readyz, an operator endpoint, so it may name the cause.
type ReadinessFunc func(ctx context.Context) error

// readyTimeout bounds a readiness check so a wedged dependency makes the
// probe fail rather than hang.
const readyTimeout = 2 * time.Second

// MetricsServer is the operator HTTP endpoint: /metrics (Prometheus), /healthz
// (the process answers) and /readyz (ReadinessFunc). It is separate from the
// API listener so probes and scrapes never queue behind key operations.
type MetricsServer struct {
	http *http.Server
}

// NewMetricsServer serves g's metrics and the health endpoints. A nil ready
// means always ready.
func NewMetricsServer(g prometheus.Gatherer, ready ReadinessFunc, log *slog.Logger) (*MetricsServer, error) {
	if g == nil {
		return nil, fmt.Errorf("nil prometheus.Gatherer: %w", ErrInvalidConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if ready == nil {
		ready = func(context.Context) error { return nil }
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      promLogger{log},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return &MetricsServer{http: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}, nil
}

// Handler returns the endpoint's routes, for tests and for mounting elsewhere.
func (m *MetricsServer) Handler() http.Handler { return m.http.Handler }

// Serve serves on lis until Stop; it then returns nil.
func (m *MetricsServer) Serve(lis net.Listener) error {
	if err := m.http.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Stop lets in-flight scrapes finish until ctx ends, then closes.
func (m *MetricsServer) Stop(ctx context.Context) {
	if err := m.http.Shutdown(ctx); err != nil {
		_ = m.http.Close()
	}
}

// promLogger routes promhttp's gathering errors to slog.
type promLogger struct{ log *slog.Logger }

func (p promLogger) Println(v ...any) { p.log.Warn("metrics gathering: " + fmt.Sprint(v...)) }
