package ztnet

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/poll"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// spanAttr returns the value of attribute key of s ("" if absent).
func spanAttr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// Dial and the listener's handshake each make a span: client and server,
// with source, destination and peer (and both ends' SPIFFE IDs, as far as
// known: a refused client's too), and the reason as the error status of
// a refusal.
func TestDialAndAcceptSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api", WithTracerProvider(tp))
	web := m.service(t, "web", WithTracerProvider(tp))
	intruder := m.service(t, "intruder", WithTracerProvider(tp))
	serve(t, listen(t, api), echo)

	c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "hi")
	c.Close()
	var denied *DeniedError
	if _, err := intruder.Dial(poll.Context(t, 5*time.Second), "api"); !errors.As(err, &denied) {
		t.Fatalf("intruder Dial: %v, want denied", err)
	}

	// The server's spans end after the verdict is sent: wait for both.
	var spans []sdktrace.ReadOnlySpan
	deadline := time.Now().Add(5 * time.Second)
	for len(spans) < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		spans = rec.Ended()
	}
	type key struct {
		name, peerOrSource string
	}
	got := map[key]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		k := key{s.Name(), spanAttr(s, "ztn.source") + spanAttr(s, "ztn.peer")}
		if s.Name() == "ztnet.Accept" && s.Status().Code == codes.Error {
			k.peerOrSource = "refused"
		}
		got[k] = s
	}
	if len(spans) != 4 {
		t.Fatalf("%d spans ended, want 4 (2 dials, 2 accepts): %v", len(spans), got)
	}
	webID, apiID, intruderID := web.ID().String(), api.ID().String(), intruder.ID().String()
	for _, tc := range []struct {
		k          key
		kind       trace.SpanKind
		attrs      map[string]string
		errContain string
	}{
		{key{"ztnet.Dial", "web" + apiID}, trace.SpanKindClient, map[string]string{"ztn.destination": "api",
			AttrSourceID: webID, AttrDestinationID: apiID}, ""},
		{key{"ztnet.Dial", "intruder"}, trace.SpanKindClient, map[string]string{"ztn.destination": "api",
			AttrSourceID: intruderID, AttrDestinationID: ""}, "no intention matches"},
		{key{"ztnet.Accept", webID}, trace.SpanKindServer, map[string]string{"ztn.destination": "api", "ztn.resumed": "false",
			AttrSourceID: webID, AttrDestinationID: apiID}, ""},
		{key{"ztnet.Accept", "refused"}, trace.SpanKindServer, map[string]string{"ztn.destination": "api", "ztn.result": "denied",
			AttrSourceID: intruderID, AttrDestinationID: apiID}, "intruder denied: no intention matches"},
	} {
		s, ok := got[tc.k]
		if !ok {
			t.Errorf("no span %v among %v", tc.k, got)
			continue
		}
		if s.SpanKind() != tc.kind {
			t.Errorf("%v: kind %v, want %v", tc.k, s.SpanKind(), tc.kind)
		}
		for k, v := range tc.attrs {
			if got := spanAttr(s, k); got != v {
				t.Errorf("%v: %s = %q, want %q", tc.k, k, got, v)
			}
		}
		if tc.errContain == "" && s.Status().Code == codes.Error {
			t.Errorf("%v: error status %q", tc.k, s.Status().Description)
		}
		if tc.errContain != "" && (s.Status().Code != codes.Error || !strings.Contains(s.Status().Description, tc.errContain)) {
			t.Errorf("%v: status %v %q, want an error with %q", tc.k, s.Status().Code, s.Status().Description, tc.errContain)
		}
	}
}
