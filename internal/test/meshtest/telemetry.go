package meshtest

import (
	"context"
	"fmt"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/ztnlabs/ztn/ztnet"
)

// TelemetryCase is a Service configuration and whether the adapters must
// instrument a Service made with it.
type TelemetryCase struct {
	Name         string
	Opts         []ztnet.Option
	Instrumented bool
}

// TelemetryCases returns the two sides of the adapters' rule: no-op tracer
// and meter providers (no instrumentation), and a real meter provider with a
// no-op tracer (instrumentation).
func TelemetryCases(t testing.TB) []TelemetryCase {
	sdk := sdkmetric.NewMeterProvider()
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	return []TelemetryCase{
		{"noop-providers", NoTelemetry(), false},
		{"real-meter-provider", []ztnet.Option{ztnet.WithTracerProvider(tracenoop.NewTracerProvider()), ztnet.WithMeterProvider(sdk)}, true},
	}
}

// noSpan is the type of span a context without one reports.
var noSpan = fmt.Sprintf("%T", trace.SpanFromContext(context.Background()))

// HasSpan reports whether ctx carries a span, even a no-op or remote one:
// only OpenTelemetry instrumentation puts one there.
func HasSpan(ctx context.Context) bool {
	return fmt.Sprintf("%T", trace.SpanFromContext(ctx)) != noSpan
}
