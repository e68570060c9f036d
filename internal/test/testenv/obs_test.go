package testenv

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// otlpJSONSpan is one span in OTLP/JSON (testenv uses the standard library
// only, so the test writes the protocol itself): service.name svc, a random
// trace ID, attribute probe.id = id.
func otlpJSONSpan(svc, id string) (traceID string, body []byte) {
	var tid [16]byte
	var sid [8]byte
	_, _ = rand.Read(tid[:])
	_, _ = rand.Read(sid[:])
	now := time.Now()
	return hex.EncodeToString(tid[:]), fmt.Appendf(nil, `{"resourceSpans":[{
		"resource":{"attributes":[{"key":"service.name","value":{"stringValue":%q}}]},
		"scopeSpans":[{"scope":{"name":"testenv"},"spans":[{
			"traceId":%q,"spanId":%q,"name":"probe","kind":2,
			"startTimeUnixNano":"%d","endTimeUnixNano":"%d",
			"attributes":[{"key":"probe.id","value":{"stringValue":%q}}]}]}]}]}`,
		svc, hex.EncodeToString(tid[:]), hex.EncodeToString(sid[:]),
		now.Add(-time.Millisecond).UnixNano(), now.UnixNano(), id)
}

func TestJaeger(t *testing.T) {
	j := Jaeger(t)
	ctx := t.Context()
	if trs, err := j.Traces(ctx, "testenv-probe"); err != nil || len(trs) != 0 {
		t.Fatalf("before any span: Traces = %d traces, %v; want none", len(trs), err)
	}
	traceID, body := otlpJSONSpan("testenv-probe", "p1")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, j.OTLPEndpoint()+"/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP export: %s", resp.Status)
	}
	trs := j.WaitTraces("testenv-probe", func(trs []JaegerTrace) bool { return len(trs) > 0 })
	if len(trs) != 1 || trs[0].TraceID != traceID || len(trs[0].Spans) != 1 {
		t.Fatalf("traces = %s; want one trace %s of one span", summarizeTraces(trs), traceID)
	}
	sp := trs[0].Spans[0]
	if v, _ := sp.Tag("probe.id"); v != "p1" || sp.OperationName != "probe" || trs[0].Service(sp) != "testenv-probe" || sp.Parent() != "" {
		t.Errorf("span = %+v (service %q); want probe, probe.id=p1, from testenv-probe, no parent", sp, trs[0].Service(sp))
	}
	if trs, err := j.Traces(ctx, "another-service"); err != nil || len(trs) != 0 {
		t.Errorf("Traces(another-service) = %s, %v; want none", summarizeTraces(trs), err)
	}
}

func TestPrometheus(t *testing.T) {
	var value atomic.Int64
	value.Store(42)
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "# TYPE probe_requests_total counter\nprobe_requests_total{service=\"a\"} %d\n", value.Load())
	}))
	t.Cleanup(metrics.Close)
	target := strings.TrimPrefix(metrics.URL, "http://")

	p := Prometheus(t, nil)
	ctx := t.Context()
	if r, err := p.Query(ctx, "probe_requests_total"); err != nil || len(r) != 0 {
		t.Fatalf("before any target: %v, %v; want an empty vector", r, err)
	}
	p.SetTargets(target)
	r := p.WaitQuery(`probe_requests_total{service="a"}`, func(r []PromSample) bool { return len(r) == 1 && r[0].Value == 42 })
	if r[0].Labels["__name__"] != "probe_requests_total" || r[0].Labels["instance"] != target || r[0].Labels["job"] != "ztn" {
		t.Errorf("labels = %v; want __name__, instance %s, job ztn", r[0].Labels, target)
	}
	value.Store(43)
	p.WaitQuery(`probe_requests_total`, func(r []PromSample) bool { return len(r) == 1 && r[0].Value == 43 })
	names, err := p.MetricNames(ctx)
	if err != nil || !slices.Contains(names, "probe_requests_total") || !slices.Contains(names, "up") {
		t.Errorf("MetricNames = %v, %v; want probe_requests_total and up among them", names, err)
	}
	if _, err := p.Query(ctx, "rate(probe_requests_total[1m]"); err == nil || !strings.Contains(err.Error(), "bad_data") {
		t.Errorf("a malformed query: err = %v; want Prometheus' bad_data", err)
	}
}
