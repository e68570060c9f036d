package certsx

import (
	"context"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

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
// result; ztn.certs.expiry, the seconds until the current leaf expires;
// ztn.certs.roots, the roots trusted per trust domain; and
// ztn.certs.leaf_issuer, 1 with the key IDs of the CA that signed the
// current leaf and of the root it chains to.
type Metrics struct {
	rotations metric.Int64Counter
	expiry    metric.Registration
}

// Observation is what a source reports at each collection: its current SVID
// and its bundles.
type Observation struct {
	SVID    *x509svid.SVID
	Bundles []*x509bundle.Bundle
}

// NewMetrics creates the instruments; observe is called at each collection
// and reports the current SVID and bundles, or false when there are none
// (the source is closed).
func NewMetrics(mp metric.MeterProvider, observe func() (Observation, bool)) (*Metrics, error) {
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
	roots, err := meter.Int64ObservableGauge("ztn.certs.roots",
		metric.WithDescription("Roots the source trusts, by trust domain (two during a CA rotation)."),
		metric.WithUnit("{root}"))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	issuer, err := meter.Int64ObservableGauge("ztn.certs.leaf_issuer",
		metric.WithDescription("1, with the key IDs of the CA that signed the current leaf (issuer_key_id) and of the root it chains to (root_key_id)."))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		ob, ok := observe()
		if !ok {
			return nil
		}
		id := attribute.String("spiffe_id", ob.SVID.ID.String())
		leaf := ob.SVID.Certificates[0]
		o.ObserveFloat64(expiry, time.Until(leaf.NotAfter).Seconds(), metric.WithAttributes(id))
		for _, b := range ob.Bundles {
			o.ObserveInt64(roots, int64(len(b.X509Authorities())), metric.WithAttributes(id, attribute.String("trust_domain", b.TrustDomain().Name())))
			if b.TrustDomain() == ob.SVID.ID.TrustDomain() {
				issuerID, rootID := LeafCA(ob.SVID, b)
				o.ObserveInt64(issuer, 1, metric.WithAttributes(id,
					attribute.String("issuer_key_id", issuerID), attribute.String("root_key_id", rootID)))
			}
		}
		return nil
	}, expiry, roots, issuer)
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
