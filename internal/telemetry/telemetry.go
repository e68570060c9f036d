// Package telemetry decides whether the adapters instrument a Service with
// OpenTelemetry. The rule is OpenTelemetry's own convention: a Service whose
// tracer and meter providers are both the no-op ones (go.opentelemetry.io/otel
// trace/noop and metric/noop) asked for no telemetry, so the adapters install
// no handler at all and pay nothing for it:
//
//	svc, err := ztnet.New(ctx, "api",
//		ztnet.WithTracerProvider(tracenoop.NewTracerProvider()),
//		ztnet.WithMeterProvider(metricnoop.NewMeterProvider()),
//		...)
//	if telemetry.Off(tracerProvider, meterProvider) { ... }
package telemetry

import (
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Off reports whether tp and mp are both OpenTelemetry's no-op providers.
// One real provider is enough to keep the instrumentation, which records
// traces and metrics together.
func Off(tp trace.TracerProvider, mp metric.MeterProvider) bool {
	return isNoopTracer(tp) && isNoopMeter(mp)
}

func isNoopTracer(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case tracenoop.TracerProvider, *tracenoop.TracerProvider:
		return true
	}
	return false
}

func isNoopMeter(mp metric.MeterProvider) bool {
	switch mp.(type) {
	case metricnoop.MeterProvider, *metricnoop.MeterProvider:
		return true
	}
	return false
}
