package obs

import (
	"fmt"
	"testing"

	"github.com/ztnlabs/ztn/internal/test/testenv"
	"github.com/ztnlabs/ztn/ztnet"
)

// spanOf finds the span of service with the given span.kind whose name is
// not one of ztnet's connection spans (ztnet.Dial, ztnet.Accept).
func spanOf(tr testenv.JaegerTrace, service, kind string) (testenv.JaegerSpan, bool) {
	for _, sp := range tr.Spans {
		if k, _ := sp.Tag("span.kind"); k == kind && tr.Service(sp) == service && sp.OperationName != "ztnet.Dial" && sp.OperationName != "ztnet.Accept" {
			return sp, true
		}
	}
	return testenv.JaegerSpan{}, false
}

// One request, user → front (HTTP) → back (gRPC), is one trace in a real
// Jaeger, with the spans of all three services, each hop's client and
// server spans naming both ends by SPIFFE ID and linked parent to child;
// a real Prometheus scraping the services' /metrics has their ztn metrics,
// a refused dial's included.
func TestThreeHopsTraceAndMetrics(t *testing.T) {
	j := testenv.Jaeger(t)
	m := newThreeHops(t, j.OTLPEndpoint())
	p := testenv.Prometheus(t, []string{m.metrics["user"], m.metrics["front"], m.metrics["back"], m.metrics["intruder"]})

	if code := m.get(t); code != 200 {
		t.Fatalf("user → front → back: status %d", code)
	}
	if _, err := m.svc["intruder"].Dial(t.Context(), "back"); err == nil {
		t.Fatal("intruder's dial to back was admitted")
	}

	// The trace: user's is the root; wait until back's spans are in it too.
	var tr testenv.JaegerTrace
	j.WaitTraces("user", func(trs []testenv.JaegerTrace) bool {
		for _, x := range trs {
			if _, ok := spanOf(x, "back", "server"); ok {
				tr = x
				return true
			}
		}
		return false
	})
	id := func(name string) string { return m.svc[name].ID().String() }
	var parent string
	for i, hop := range []struct{ service, kind, src, dst string }{
		{"user", "client", "user", "front"},
		{"front", "server", "user", "front"},
		{"front", "client", "front", "back"},
		{"back", "server", "front", "back"},
	} {
		sp, ok := spanOf(tr, hop.service, hop.kind)
		if !ok {
			t.Errorf("no %s span of %s in the trace: %s", hop.kind, hop.service, summary(tr))
			continue
		}
		src, _ := sp.Tag(ztnet.AttrSourceID)
		dst, _ := sp.Tag(ztnet.AttrDestinationID)
		if src != id(hop.src) || dst != id(hop.dst) {
			t.Errorf("%s span %q of %s: source %q, destination %q; want %s, %s", hop.kind, sp.OperationName, hop.service, src, dst, id(hop.src), id(hop.dst))
		}
		// front's client span is a grandchild of its server span (otelhttp's
		// server span, then the gRPC client's): check the hops across
		// services, where the context had to travel.
		if i%2 == 1 && sp.Parent() != parent {
			t.Errorf("%s's %s span's parent is %q, want the %s span before it (%s): the trace context did not cross", hop.service, hop.kind, sp.Parent(), "client", parent)
		}
		parent = sp.SpanID
	}
	// Every ztn connection span in the trace (the Dials) names both ends.
	for _, sp := range tr.Spans {
		if sp.OperationName != "ztnet.Dial" {
			continue
		}
		if src, _ := sp.Tag(ztnet.AttrSourceID); src == "" {
			t.Errorf("ztnet.Dial of %s has no %s", tr.Service(sp), ztnet.AttrSourceID)
		}
		if dst, _ := sp.Tag(ztnet.AttrDestinationID); dst == "" {
			t.Errorf("ztnet.Dial of %s has no %s", tr.Service(sp), ztnet.AttrDestinationID)
		}
	}

	// The metrics, through Prometheus' query API.
	for _, q := range []string{
		`ztn_handshakes_total{service="front", side="server", result="ok"}`,
		`ztn_handshakes_total{service="back", side="server", result="ok"}`,
		`ztn_handshakes_total{service="back", side="server", result="denied"}`,
		`ztn_authz_decisions_total{service="back", result="deny", reason="default"}`,
		`ztn_dial_attempts_total{service="user"}`,
		`ztn_connections_active{service="back", side="server"}`,
		`http_server_request_duration_seconds_count{job="ztn", service_name="front"}`,
		`http_client_request_duration_seconds_count{service_name="user"}`,
		`rpc_client_call_duration_seconds_count{service_name="front"}`,
		`rpc_server_call_duration_seconds_count{service_name="back"}`,
		`ztn_certs_expiry_seconds{service_name="back"}`,
	} {
		p.WaitQuery(q, func(r []testenv.PromSample) bool { return len(r) > 0 && r[0].Value >= 1 })
	}
}

func summary(tr testenv.JaegerTrace) string {
	s := tr.TraceID + ":"
	for _, sp := range tr.Spans {
		k, _ := sp.Tag("span.kind")
		s += fmt.Sprintf(" %s/%s/%s", tr.Service(sp), k, sp.OperationName)
	}
	return s
}
