package certs

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

const meterName = "github.com/ztnlabs/ztn/certs"

var (
	resultSuccess = metric.WithAttributes(attribute.String("result", "success"))
	resultFailure = metric.WithAttributes(attribute.String("result", "failure"))
)

// metrics are a Rotator's instruments.
type metrics struct {
	rotations metric.Int64Counter
	expiry    metric.Registration
}

// newMetrics creates the instruments; observe is called at each collection
// and reports the current SPIFFE ID and seconds until its leaf expires.
func newMetrics(mp metric.MeterProvider, observe func() (id string, seconds float64, ok bool)) (*metrics, error) {
	meter := mp.Meter(meterName)
	rotations, err := meter.Int64Counter("ztn.certs.rotations",
		metric.WithDescription("SVID issuances by result (success or failure)."),
		metric.WithUnit("{rotation}"))
	if err != nil {
		return nil, fmt.Errorf("certs: metrics: %w", err)
	}
	expiry, err := meter.Float64ObservableGauge("ztn.certs.expiry",
		metric.WithDescription("Seconds until the current SVID's leaf expires (negative once it has)."),
		metric.WithUnit("s"))
	if err != nil {
		return nil, fmt.Errorf("certs: metrics: %w", err)
	}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if id, s, ok := observe(); ok {
			o.ObserveFloat64(expiry, s, metric.WithAttributes(attribute.String("spiffe_id", id)))
		}
		return nil
	}, expiry)
	if err != nil {
		return nil, fmt.Errorf("certs: metrics: %w", err)
	}
	return &metrics{rotations: rotations, expiry: reg}, nil
}

func (m *metrics) rotation(err error) {
	if err != nil {
		m.rotations.Add(context.Background(), 1, resultFailure)
	} else {
		m.rotations.Add(context.Background(), 1, resultSuccess)
	}
}

func (m *metrics) close() error {
	return m.expiry.Unregister()
}
