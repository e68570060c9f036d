package httpztn_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/ztnet"
)

// With both of a Service's providers no-op, NewServer and NewClient install
// no otelhttp layer (telemetry that is off costs nothing); with a real meter
// provider they do.
func TestTelemetryOffInstallsNoHandler(t *testing.T) {
	for _, tc := range meshtest.TelemetryCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			m := meshtest.Dev(t)
			meshtest.Intentions(t, m, allowWebToAPI)
			api, web := meshtest.Service(t, m, "api", tc.Opts...), meshtest.Service(t, m, "web", tc.Opts...)
			// Only an otelhttp handler in front puts a span (even a no-op
			// one) in the request's context.
			serveHTTP(t, api, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, meshtest.HasSpan(r.Context()))
			}))
			c := newClient(t, web)
			code, body := do(t, c, "GET", "http://api/")
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			if body != fmt.Sprint(tc.Instrumented) {
				t.Errorf("server: otelhttp handler installed = %s, want %v", body, tc.Instrumented)
			}
			// Instrumented, the Transport sends through otelhttp's.
			if got := httpztn.Instrumented(c.Transport.(*httpztn.Transport)); got != tc.Instrumented {
				t.Errorf("client: otelhttp transport installed = %v, want %v", got, tc.Instrumented)
			}
		})
	}
}

// A request's client span (web) and server span (api) carry both ends'
// SPIFFE IDs, and the server's span is the client's child: the trace
// context crossed as traceparent, with each service's own tracer provider
// and no global propagator set. Over HTTP/2 and HTTP/1.1.
func TestRequestSpansCarryIDsAndPropagate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []httpztn.Option
	}{{"h2", nil}, {"http1", []httpztn.Option{httpztn.WithHTTP1()}}} {
		t.Run(tc.name, func(t *testing.T) {
			apiRec, webRec := meshtest.NewRecorder(t), meshtest.NewRecorder(t)
			m := meshtest.Dev(t)
			meshtest.Intentions(t, m, allowWebToAPI)
			api := meshtest.Service(t, m, "api", ztnet.WithTracerProvider(apiRec))
			web := meshtest.Service(t, m, "web", ztnet.WithTracerProvider(webRec))
			var traceparent atomic.Value
			serveHTTP(t, api, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				traceparent.Store(r.Header.Get("Traceparent"))
			}))
			if code, body := do(t, newClient(t, web, tc.opts...), "GET", "http://api/x"); code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			if tp, _ := traceparent.Load().(string); tp == "" {
				t.Error("the request arrived without a traceparent header")
			}
			meshtest.CheckRequestSpans(t, webRec, apiRec, web, api)
		})
	}
}

// The gateway does not continue a trace context from outside the mesh (a
// caller could pick the trace ID): its span starts a trace of its own,
// linked to the caller's, and the request to the service continues that.
func TestGatewayStartsItsOwnTrace(t *testing.T) {
	gwRec, apiRec := meshtest.NewRecorder(t), meshtest.NewRecorder(t)
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"gateway","Action":"allow"}]}]`)
	gwSvc := meshtest.Service(t, m, "gateway", ztnet.WithTracerProvider(gwRec))
	api := meshtest.Service(t, m, "api", ztnet.WithTracerProvider(apiRec))
	serveHTTP(t, api, whoami)
	gw, err := httpztn.NewGateway(gwSvc, httpztn.Route{Service: "api"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	pub := httptest.NewServer(gw)
	t.Cleanup(pub.Close)

	const outside = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, pub.URL+"/x", nil)
	req.Header.Set("Traceparent", "00-"+outside+"-00f067aa0ba902b7-01")
	resp, err := pub.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	meshtest.CheckRequestSpans(t, gwRec, apiRec, gwSvc, api)
	var in sdktrace.ReadOnlySpan
	for _, s := range gwRec.Ended() {
		if s.SpanKind() == trace.SpanKindServer {
			in = s
		}
	}
	if in == nil {
		t.Fatal("no server span of the gateway")
	}
	if got := in.SpanContext().TraceID().String(); got == outside || in.Parent().IsValid() {
		t.Errorf("the gateway's span continues the caller's trace (trace %s, parent %v)", got, in.Parent())
	}
	if links := in.Links(); len(links) != 1 || links[0].SpanContext.TraceID().String() != outside {
		t.Errorf("the gateway's span links %v, want the caller's trace %s", links, outside)
	}
}
