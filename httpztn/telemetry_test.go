package httpztn_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
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

// endsOf returns the ended spans of rec of the given kind.
func endsOf(rec *tracetest.SpanRecorder, kind trace.SpanKind) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == kind {
			out = append(out, s)
		}
	}
	return out
}

func attrOf(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
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
			apiRec, webRec := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
			apiTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(apiRec))
			webTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(webRec))
			t.Cleanup(func() { _ = apiTP.Shutdown(context.Background()); _ = webTP.Shutdown(context.Background()) })
			m := meshtest.Dev(t)
			meshtest.Intentions(t, m, allowWebToAPI)
			api := meshtest.Service(t, m, "api", ztnet.WithTracerProvider(apiTP))
			web := meshtest.Service(t, m, "web", ztnet.WithTracerProvider(webTP))
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
			var client, server []sdktrace.ReadOnlySpan
			meshtest.WaitFor(t, 5*time.Second, func() bool {
				client, server = endsOf(webRec, trace.SpanKindClient), endsOf(apiRec, trace.SpanKindServer)
				return len(client) > 0 && len(server) > 0
			})
			// web's client spans: otelhttp's, and ztnet.Dial's under it.
			var req sdktrace.ReadOnlySpan
			for _, s := range client {
				if s.Name() != "ztnet.Dial" {
					req = s
				}
			}
			var srv sdktrace.ReadOnlySpan
			for _, s := range server {
				if s.Name() != "ztnet.Accept" {
					srv = s
				}
			}
			if req == nil || srv == nil {
				t.Fatalf("no request span: client %v, server %v", client, server)
			}
			webID, apiID := web.ID().String(), api.ID().String()
			for _, s := range []sdktrace.ReadOnlySpan{req, srv} {
				if got := attrOf(s, ztnet.AttrSourceID); got != webID {
					t.Errorf("%s span: %s = %q, want %q", s.SpanKind(), ztnet.AttrSourceID, got, webID)
				}
				if got := attrOf(s, ztnet.AttrDestinationID); got != apiID {
					t.Errorf("%s span: %s = %q, want %q", s.SpanKind(), ztnet.AttrDestinationID, got, apiID)
				}
			}
			if srv.SpanContext().TraceID() != req.SpanContext().TraceID() || srv.Parent().SpanID() != req.SpanContext().SpanID() {
				t.Errorf("server span %v (parent %v) is not the child of client span %v", srv.SpanContext().SpanID(), srv.Parent().SpanID(), req.SpanContext().SpanID())
			}
		})
	}
}
