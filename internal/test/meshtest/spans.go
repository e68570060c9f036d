package meshtest

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/ztnet"
)

// Recorder is a tracer provider that keeps the spans that end, for one
// service (give each service its own, as separate processes would have).
type Recorder struct {
	*sdktrace.TracerProvider
	rec *tracetest.SpanRecorder
}

// NewRecorder returns a Recorder shut down when the test ends.
func NewRecorder(t testing.TB) *Recorder {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &Recorder{TracerProvider: tp, rec: rec}
}

// Ended returns the spans that have ended.
func (r *Recorder) Ended() []sdktrace.ReadOnlySpan { return r.rec.Ended() }

// SpanAttr returns the value of attribute key of s ("" if absent).
func SpanAttr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// requestSpan returns the first ended span of r of kind that is not one of
// ztnet's connection spans (ztnet.Dial, ztnet.Accept).
func (r *Recorder) requestSpan(kind trace.SpanKind) sdktrace.ReadOnlySpan {
	for _, s := range r.rec.Ended() {
		if s.SpanKind() == kind && s.Name() != "ztnet.Dial" && s.Name() != "ztnet.Accept" {
			return s
		}
	}
	return nil
}

// CheckRequestSpans waits for one request's client span in client and
// server span in server (the adapter's, not ztnet's connection spans), and
// checks that both carry the source's and destination's SPIFFE IDs and that
// the server's span is the child of the client's: the trace context
// crossed.
func CheckRequestSpans(t testing.TB, client, server *Recorder, source, destination *ztnet.Service) {
	t.Helper()
	var cs, ss sdktrace.ReadOnlySpan
	poll.WaitFor(t, 5*time.Second, func() bool {
		cs, ss = client.requestSpan(trace.SpanKindClient), server.requestSpan(trace.SpanKindServer)
		return cs != nil && ss != nil
	})
	src, dst := source.ID().String(), destination.ID().String()
	for _, s := range []sdktrace.ReadOnlySpan{cs, ss} {
		if got := SpanAttr(s, ztnet.AttrSourceID); got != src {
			t.Errorf("%s span %q: %s = %q, want %q", s.SpanKind(), s.Name(), ztnet.AttrSourceID, got, src)
		}
		if got := SpanAttr(s, ztnet.AttrDestinationID); got != dst {
			t.Errorf("%s span %q: %s = %q, want %q", s.SpanKind(), s.Name(), ztnet.AttrDestinationID, got, dst)
		}
	}
	if ss.SpanContext().TraceID() != cs.SpanContext().TraceID() || ss.Parent().SpanID() != cs.SpanContext().SpanID() {
		t.Errorf("server span %s (trace %s, parent %s) is not the child of client span %s (trace %s)",
			ss.SpanContext().SpanID(), ss.SpanContext().TraceID(), ss.Parent().SpanID(), cs.SpanContext().SpanID(), cs.SpanContext().TraceID())
	}
}
