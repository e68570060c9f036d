package main

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// testTrace: one user action — a /fortune posted through the gateway and
// the bot's answer — is one trace in Jaeger across chat-gateway →
// chat-web → chat-store → Postgres and chat-bot → fortune and back to
// chat-store, each hop's spans carrying both ends' SPIFFE IDs; and the
// services' ztn metrics reach Prometheus.
func testTrace(t *testing.T, m *chatMesh, a *api, ann string) {
	a.expect(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": "/fortune traced"})
	a.waitBotReply(ann, "🥠", 20*time.Second)
	id := func(service string) string {
		return "spiffe://" + meshtest.TrustDomain + "/ns/default/dc/dc1/svc/" + service
	}
	hops := [][2]string{{svcGateway, svcWeb}, {svcWeb, svcStore}, {svcBot, svcFortune}, {svcBot, svcStore}}
	var found testenv.JaegerTrace
	m.jaeger.WaitTraces(svcBot, func(trs []testenv.JaegerTrace) bool {
		for _, tr := range trs {
			if traceHas(tr, svcStore, "postgres WITH") && traceHas(tr, svcBot, "chat-bot answer") && len(missingHops(tr, id, hops)) == 0 &&
				rootService(tr) == svcGateway {
				found = tr
				return true
			}
		}
		return false
	})
	services := map[string]int{}
	for _, sp := range found.Spans {
		services[found.Service(sp)]++
	}
	t.Logf("one trace %s: %d spans, by service %v", found.TraceID, len(found.Spans), services)
}

// traceHas reports whether tr has a span named op from service.
func traceHas(tr testenv.JaegerTrace, service, op string) bool {
	return slices.ContainsFunc(tr.Spans, func(sp testenv.JaegerSpan) bool {
		return tr.Service(sp) == service && sp.OperationName == op
	})
}

// missingHops returns the hops (source → destination) of which tr has no
// span carrying both ends' SPIFFE IDs.
func missingHops(tr testenv.JaegerTrace, id func(string) string, hops [][2]string) []string {
	var missing []string
	for _, h := range hops {
		if !slices.ContainsFunc(tr.Spans, func(sp testenv.JaegerSpan) bool {
			src, _ := sp.Tag("ztn.source.spiffe_id")
			dst, _ := sp.Tag("ztn.destination.spiffe_id")
			return src == id(h[0]) && dst == id(h[1])
		}) {
			missing = append(missing, h[0]+" → "+h[1])
		}
	}
	return missing
}

// rootService is the service of tr's root span ("" when there is none).
func rootService(tr testenv.JaegerTrace) string {
	for _, sp := range tr.Spans {
		if sp.Parent() == "" {
			return tr.Service(sp)
		}
	}
	return ""
}

// testMetrics: Prometheus scraped every service's /metrics and holds ztn's
// metrics for each, the refusals of the deny case included.
func testMetrics(t *testing.T, m *chatMesh) {
	want := []string{svcGateway, svcWeb, svcStore, svcBot, svcFortune}
	res := m.prom.WaitQuery(`sum by (service) (ztn_handshakes_total)`, func(ss []testenv.PromSample) bool {
		var got []string
		for _, s := range ss {
			got = append(got, s.Labels["service"])
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				return false
			}
		}
		return true
	})
	t.Logf("ztn_handshakes_total by service: %v", res)
	denied := m.prom.WaitQuery(`sum by (service, reason) (ztn_authz_decisions_total{result="deny"})`, func(ss []testenv.PromSample) bool {
		return slices.ContainsFunc(ss, func(s testenv.PromSample) bool { return s.Labels["service"] == svcStore && s.Value > 0 })
	})
	t.Logf("refusals: %v", denied)
}
