package certsx

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// meterName is the instrumentation scope of every certificate source.
const meterName = "github.com/ztnlabs/ztn/certs"

var (
	resultSuccess = metric.WithAttributes(attribute.String("result", "success"))
	resultFailure = metric.WithAttributes(attribute.String("result", "failure"))
)

// Metrics are a source's instruments: ztn.certs.rotations, issuances by
// result, and ztn.certs.expiry, the seconds until the current leaf expires.
type Metrics struct {
	rotations metric.Int64Counter
	expiry    metric.Registration
}

// NewMetrics creates the instruments; observe is called at each collection
// and reports the current SPIFFE ID and seconds until its leaf expires.
func NewMetrics(mp metric.MeterProvider, observe func() (id string, seconds float64, ok bool)) (*Metrics, error) {
	meter := mp.Meter(meterName)
	rotations, err := meter.Int64Counter("ztn.certs.rotations",
		metric.WithDescription("SVID issuances by result (success or failure)."),
		metric.WithUnit("{rotation}"))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	expiry, err := meter.Float64ObservableGauge("ztn.certs.expiry",
		metric.WithDescription("Seconds until the current SVID's leaf expires (negative once it has)."),
		metric.WithUnit("s"))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if id, s, ok := observe(); ok {
			o.ObserveFloat64(expiry, s, metric.WithAttributes(attribute.String("spiffe_id", id)))
		}
		return nil
	}, expiry)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &Metrics{rotations: rotations, expiry: reg}, nil
}

// Rotation counts one issuance (or update) that failed with err, or
// succeeded if err is nil.
func (m *Metrics) Rotation(err error) {
	if err != nil {
		m.rotations.Add(context.Background(), 1, resultFailure)
	} else {
		m.rotations.Add(context.Background(), 1, resultSuccess)
	}
}

// Close stops reporting the expiry gauge.
func (m *Metrics) Close() error {
	return m.expiry.Unregister()
}
