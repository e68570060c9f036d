// Package obs gives an example program's services their OpenTelemetry
// providers: traces exported over OTLP/HTTP to a collector such as Jaeger,
// and metrics served on a Prometheus /metrics endpoint by otel's Prometheus
// exporter, every series labelled with service_name. Each Telemetry has its own Prometheus registry and providers:
// nothing is global, so several services in one process (the examples' dev
// mode) each get their own.
//
// Hand the providers to ztn with [Telemetry.ZtnOptions]
// (ztnet.WithTracerProvider, ztnet.WithMeterProvider); grpcztn and httpztn
// inherit them from the Service, and propagate the trace context (W3C
// traceparent) across services.
//
// The OTLP endpoint comes from [WithOTLPEndpoint], or else from
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT, as for
// any OpenTelemetry SDK. With none of them set, traces are not exported (a
// no-op tracer provider), and Setup says so once in the log.
//
// A service of an example program:
//
//	tel, err := obs.Setup(ctx, "chat-store")
//	defer tel.Shutdown(context.WithoutCancel(ctx))
//	svc, err := mesh.Service(ctx, "chat-store", tel.ZtnOptions()...)
//	go http.Serve(metricsListener, tel.Handler()) // plain HTTP on loopback, for Prometheus
//
// The Grafana dashboard in dashboards/ztn.json reads these metrics.
package obs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/ztnlabs/ztn/ztnet"
)

// Telemetry is one service's tracer and meter providers and its /metrics
// handler. Make it with Setup; end it with Shutdown.
type Telemetry struct {
	// TracerProvider exports spans over OTLP, or is a no-op one when no
	// endpoint is configured.
	TracerProvider trace.TracerProvider
	// MeterProvider's instruments are served by Handler.
	MeterProvider metric.MeterProvider
	// Endpoint is the URL spans are sent to ("" when they are not
	// exported).
	Endpoint string

	tp       *sdktrace.TracerProvider // nil without an endpoint
	mp       *sdkmetric.MeterProvider
	registry *prometheus.Registry
}

var errNotSetUp = errors.New("obs: Telemetry not made by Setup")

// Setup makes the providers of service (its service.name). ctx bounds only
// the setup.
func Setup(ctx context.Context, service string, opts ...Option) (*Telemetry, error) {
	cfg := config{logger: slog.Default(), getenv: os.Getenv}
	for _, o := range opts {
		o(&cfg)
	}
	if service == "" {
		return nil, errors.New("obs: empty service name")
	}
	res := resource.NewSchemaless(attribute.String("service.name", service))

	reg := prometheus.NewRegistry()
	// service_name on every series: one Prometheus job scrapes every
	// service, and otelhttp's and otelgrpc's metrics have no service label
	// of their own.
	exp, err := otelprom.New(otelprom.WithRegisterer(reg),
		otelprom.WithResourceAsConstantLabels(attribute.NewAllowKeysFilter("service.name")))
	if err != nil {
		return nil, fmt.Errorf("obs: prometheus exporter: %w", err)
	}
	t := &Telemetry{registry: reg,
		mp: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))}
	t.MeterProvider = t.mp

	endpoint, err := traceEndpoint(cfg)
	if err != nil {
		return nil, errors.Join(err, t.mp.Shutdown(ctx))
	}
	if endpoint == "" {
		cfg.logger.Info("obs: no OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT is not set): traces are not exported", "service", service)
		t.TracerProvider = tracenoop.NewTracerProvider()
		return t, nil
	}
	// The endpoint option overrides the exporter's own reading of the
	// endpoint variables, so that WithGetenv's answer is the one used.
	sx, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("obs: OTLP exporter for %s: %w", endpoint, err), t.mp.Shutdown(ctx))
	}
	t.Endpoint = endpoint
	t.tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res),
		sdktrace.WithBatcher(sx, sdktrace.WithBatchTimeout(500*time.Millisecond)))
	t.TracerProvider = t.tp
	cfg.logger.Info("obs: exporting traces over OTLP/HTTP", "service", service, "endpoint", endpoint)
	return t, nil
}

// traceEndpoint is the URL spans go to: WithOTLPEndpoint's or
// OTEL_EXPORTER_OTLP_ENDPOINT's base URL plus /v1/traces, or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is; "" when none is set.
func traceEndpoint(cfg config) (string, error) {
	base, full := cfg.endpoint, ""
	if base == "" {
		full = cfg.getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
		base = cfg.getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	raw := full
	if raw == "" {
		raw = base
	}
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("obs: OTLP endpoint %q: want http(s)://host:port", raw)
	}
	if full == "" {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	return u.String(), nil
}

// Handler serves the service's metrics in the Prometheus text format (mount
// it at /metrics).
func (t *Telemetry) Handler() http.Handler {
	if t == nil || t.registry == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, errNotSetUp.Error(), http.StatusServiceUnavailable)
		})
	}
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// ZtnOptions returns the ztnet options that make a Service (and the grpcztn
// and httpztn adapters over it) use these providers.
func (t *Telemetry) ZtnOptions() []ztnet.Option {
	if t == nil || t.mp == nil {
		return nil // ztnet's defaults: no telemetry
	}
	return []ztnet.Option{ztnet.WithTracerProvider(t.TracerProvider), ztnet.WithMeterProvider(t.MeterProvider)}
}

// Shutdown flushes the spans not yet exported and stops both providers;
// ctx bounds the flush.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil || t.mp == nil {
		return errNotSetUp
	}
	var errs []error
	if t.tp != nil {
		if err := t.tp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("obs: tracer provider: %w", err))
		}
	}
	if err := t.mp.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("obs: meter provider: %w", err))
	}
	return errors.Join(errs...)
}
