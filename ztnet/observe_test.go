package ztnet

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/test/poll"
)

// sumOf returns the value of the counter name at the point whose attributes
// include all of want.
func sumOf(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T", name, m.Data)
			}
		points:
			for _, p := range sum.DataPoints {
				for _, kv := range want {
					if v, ok := p.Attributes.Value(kv.Key); !ok || v != kv.Value {
						continue points
					}
				}
				return p.Value
			}
		}
	}
	return 0
}

func TestMetricsCountHandshakesAndDecisions(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api", WithMeterProvider(mp))
	web := m.service(t, "web", WithMeterProvider(mp))
	intruder := m.service(t, "intruder")
	serve(t, listen(t, api), echo)

	for range 2 {
		c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c, "m")
		c.Close()
	}
	if _, err := intruder.Dial(poll.Context(t, 5*time.Second), "api"); err == nil {
		t.Fatal("intruder admitted")
	}
	m.logs.waitFor(t, "ztn connection refused", func(logRecord) bool { return true })

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	server := attribute.String("side", "server")
	for _, tc := range []struct {
		name string
		want int64
		kv   []attribute.KeyValue
	}{
		{"ztn.handshakes", 2, []attribute.KeyValue{server, attribute.String("result", "ok")}},
		{"ztn.handshakes", 1, []attribute.KeyValue{server, attribute.String("result", "denied")}},
		{"ztn.handshakes", 2, []attribute.KeyValue{attribute.String("side", "client"), attribute.String("result", "ok")}},
		{"ztn.authz.decisions", 2, []attribute.KeyValue{attribute.String("result", "allow"), attribute.String("reason", "intention")}},
		{"ztn.authz.decisions", 1, []attribute.KeyValue{attribute.String("result", "deny"), attribute.String("reason", "default")}},
	} {
		if got := sumOf(t, rm, tc.name, tc.kv...); got != tc.want {
			t.Errorf("%s%v = %d, want %d", tc.name, tc.kv, got, tc.want)
		}
	}
}

// expiringIssuer issues once, then fails: a CA outage that outlasts the
// certificate, which a real CA cannot be made to produce on cue.
type expiringIssuer struct {
	certs.Issuer
	issued atomic.Int32
}

func (e *expiringIssuer) Issue(ctx context.Context) (*certs.Identity, error) {
	if e.issued.Add(1) > 1 {
		return nil, errors.New("CA unreachable")
	}
	return e.Issuer.Issue(ctx)
}

func TestExpiredCertificateFailsClosed(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api", "api->web")
	api := m.service(t, "api")
	serve(t, listen(t, api), echo)
	src, err := certs.NewRotator(poll.Context(t, 5*time.Second),
		&expiringIssuer{Issuer: m.CA().Issuer("dc1", "web", 1500*time.Millisecond)},
		certs.WithBackoff(50*time.Millisecond, 200*time.Millisecond), certs.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	web := m.service(t, "web", withOwnedSource(src))
	serve(t, listen(t, web), echo)
	c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "before expiry")
	c.Close()

	time.Sleep(1600 * time.Millisecond)
	_, err = web.Dial(poll.Context(t, 5*time.Second), "api")
	if err == nil || !strings.Contains(err.Error(), "no usable certificate") || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("dial with an expired certificate: %v", err)
	}
	// And a listener with an expired certificate serves nobody.
	if _, err := api.Dial(poll.Context(t, 5*time.Second), "web"); err == nil {
		t.Fatal("a server with an expired certificate was reachable")
	}
	m.logs.waitFor(t, "ztn connection refused", func(r logRecord) bool {
		return r.attrs["service"] == "web" && strings.Contains(r.attrs["reason"], "no usable certificate")
	})
}
