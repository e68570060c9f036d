// Package certstest helps the tests of package certs and its backends: it
// reads the metrics the certificate sources report, makes test leaves and
// encodes them as PEM. It imports no ztn package, so certs' own internal
// tests can use it.
//
//	reader := sdkmetric.NewManualReader()
//	src, err := certs.NewFiles(ctx, cfg,
//		certs.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
//	...
//	rotations, expiry := certstest.Metrics(t, reader)
package certstest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Metrics collects reader and returns ztn.certs.rotations by result
// ("success", "failure") and ztn.certs.expiry by SPIFFE ID.
func Metrics(t testing.TB, reader sdkmetric.Reader) (rotations map[string]int64, expiry map[string]float64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	rotations, expiry = map[string]int64{}, map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				if m.Name == "ztn.certs.rotations" {
					for _, p := range data.DataPoints {
						v, _ := p.Attributes.Value(attribute.Key("result"))
						rotations[v.AsString()] += p.Value
					}
				}
			case metricdata.Gauge[float64]:
				if m.Name == "ztn.certs.expiry" {
					for _, p := range data.DataPoints {
						v, _ := p.Attributes.Value(attribute.Key("spiffe_id"))
						expiry[v.AsString()] = p.Value
					}
				}
			}
		}
	}
	return rotations, expiry
}
