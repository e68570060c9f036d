package telemetry

import (
	"testing"

	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

func TestOff(t *testing.T) {
	tnoop, mnoop := tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider()
	sdk := sdkmetric.NewMeterProvider()
	t.Cleanup(func() { _ = sdk.Shutdown(t.Context()) })
	if !Off(tnoop, mnoop) || !Off(&tnoop, &mnoop) {
		t.Error("both no-op providers: want telemetry off")
	}
	if Off(tnoop, sdk) {
		t.Error("a real meter provider: want telemetry on")
	}
	if Off(otel.GetTracerProvider(), mnoop) {
		t.Error("otel's global tracer provider (which may be set later): want telemetry on")
	}
	if Off(nil, nil) {
		t.Error("nil providers: want telemetry on (the Service fills in otel's globals)")
	}
}
