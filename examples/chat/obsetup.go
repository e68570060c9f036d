package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ztnlabs/ztn/examples/internal/obs"
)

// telemetrySet is the OpenTelemetry setup of the services of one process
// (package obs): each service its own providers, traces exported over
// OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set,
// metrics in a Prometheus registry of its own.
type telemetrySet map[string]*obs.Telemetry

func setupTelemetry(ctx context.Context, getenv func(string) string, logger *slog.Logger, services ...string) (telemetrySet, error) {
	set := telemetrySet{}
	for _, s := range services {
		t, err := obs.Setup(ctx, s, obs.WithGetenv(getenv), obs.WithLogger(logger))
		if err != nil {
			return nil, errors.Join(err, set.shutdown())
		}
		set[s] = t
	}
	return set, nil
}

// providers is a roleConfig.telemetry.
func (s telemetrySet) providers(service string) providers {
	t := s[service]
	if t == nil {
		return providers{}
	}
	return providers{tracer: t.TracerProvider, meter: t.MeterProvider}
}

// shutdown flushes the spans not yet sent (for at most 5 s) and stops the
// providers.
func (s telemetrySet) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, t := range s {
		errs = append(errs, t.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// handler serves the metrics: at /metrics for a process of one service,
// at /metrics/<service> for each when there are several (dev mode).
func (s telemetrySet) handler() http.Handler {
	mux := http.NewServeMux()
	for name, t := range s {
		if len(s) == 1 {
			mux.Handle("GET /metrics", t.Handler())
		} else {
			mux.Handle("GET /metrics/"+name, t.Handler())
		}
	}
	return mux
}

// startTelemetry sets up the services' telemetry, points rc.telemetry at
// it and, when rc.metricsAddr is set, serves their metrics there; stop ends
// both.
func startTelemetry(ctx context.Context, getenv func(string) string, rc *roleConfig, services ...string) (stop func(), err error) {
	tel, err := setupTelemetry(ctx, getenv, rc.logger, services...)
	if err != nil {
		return nil, err
	}
	rc.telemetry = tel.providers
	if rc.metricsAddr == "" {
		return func() { _ = tel.shutdown() }, nil
	}
	stopMetrics, err := startMetrics(ctx, tel, *rc)
	if err != nil {
		_ = tel.shutdown()
		return nil, err
	}
	return func() { stopMetrics(); _ = tel.shutdown() }, nil
}

// startMetrics serves the set's metrics on rc.metricsAddr (plain HTTP:
// Prometheus scrapes it) until stop is called.
func startMetrics(ctx context.Context, set telemetrySet, rc roleConfig) (stop func(), err error) {
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", rc.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("chat: metrics: %w", err)
	}
	srv := &http.Server{Handler: set.handler(), ReadHeaderTimeout: 10 * time.Second}
	for name := range set {
		path := "/metrics"
		if len(set) > 1 {
			path += "/" + name
		}
		fmt.Fprintf(rc.out, "%s: Prometheus metrics at http://%s%s\n", name, l.Addr(), path)
		if rc.listening != nil {
			rc.listening(name+" metrics", l.Addr())
		}
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(l) }()
	return func() { _ = srv.Close(); <-served }, nil
}
