package certs

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ztnlabs/ztn/internal/certsx"
)

// gaugeOf returns the points of the int64 gauge name.
func gaugeOf(t *testing.T, reader sdkmetric.Reader, name string) []metricdata.DataPoint[int64] {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data.(metricdata.Gauge[int64]).DataPoints
			}
		}
	}
	return nil
}

func attr(p metricdata.DataPoint[int64], key string) string {
	v, _ := p.Attributes.Value(attribute.Key(key))
	return v.Emit()
}

// TestInspectCAFollowsRotation: InspectCA and the metrics ztn.certs.roots
// and ztn.certs.leaf_issuer show a DevCA root rotation step by step: one
// root signing the leaf; then both roots; then the leaf re-issued under the
// new one.
func TestInspectCAFollowsRotation(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	ca := newTestCA(t)
	src := newTestSource(t, ca, "web", time.Hour, WithMeterProvider(mp), WithRootChangeWindow(0))
	r1 := certsx.KeyID(ca.Bundle().X509Authorities()[0])

	info, err := InspectCA(src)
	if err != nil {
		t.Fatal(err)
	}
	if info.LeafIssuer != r1 || info.LeafRoot != r1 || !slices.Equal(info.Roots, []string{r1}) {
		t.Fatalf("before the rotation: %+v, want everything %s", info, r1)
	}
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	checkMetrics := func(roots int64, issuer string) {
		t.Helper()
		pts := gaugeOf(t, reader, "ztn.certs.roots")
		if len(pts) != 1 || pts[0].Value != roots || attr(pts[0], "trust_domain") != "ztn.test" || attr(pts[0], "spiffe_id") != svid.ID.String() {
			t.Errorf("ztn.certs.roots = %+v, want %d for ztn.test", pts, roots)
		}
		pts = gaugeOf(t, reader, "ztn.certs.leaf_issuer")
		if len(pts) != 1 || pts[0].Value != 1 || attr(pts[0], "issuer_key_id") != issuer || attr(pts[0], "root_key_id") != issuer {
			t.Errorf("ztn.certs.leaf_issuer = %+v, want issuer and root %s", pts, issuer)
		}
	}
	checkMetrics(1, r1)

	ch := src.Changed()
	if err := ca.RotateRoot(); err != nil {
		t.Fatal(err)
	}
	r2 := certsx.KeyID(ca.Bundle().X509Authorities()[1])
	if r2 == r1 {
		t.Fatal("the new root has the old one's key ID")
	}
	for info.LeafIssuer != r2 {
		waitChanged(t, ch, 5*time.Second, "the leaf re-issued under the new root")
		ch = src.Changed()
		if info, err = InspectCA(src); err != nil {
			t.Fatal(err)
		}
	}
	if info.LeafRoot != r2 || !slices.Contains(info.Roots, r1) || !slices.Contains(info.Roots, r2) || len(info.Roots) != 2 {
		t.Fatalf("after the switch: %+v, want leaf under %s, roots %s and %s", info, r2, r1, r2)
	}
	checkMetrics(2, r2)

	_ = src.Close()
	if _, err := InspectCA(src); !errors.Is(err, ErrClosed) {
		t.Errorf("InspectCA of a closed source: %v, want ErrClosed", err)
	}
	if pts := gaugeOf(t, reader, "ztn.certs.leaf_issuer"); len(pts) != 0 {
		t.Errorf("a closed source still reports %+v", pts)
	}
	if _, err := InspectCA(nil); err == nil {
		t.Error("InspectCA(nil) did not fail")
	}
	if _, err := InspectCA(&Rotator{}); err == nil {
		t.Error("InspectCA of a Rotator not made by NewRotator did not fail")
	}
}
