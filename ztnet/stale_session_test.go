package ztnet

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ztnlabs/ztn/internal/test/logtest"
)

const staleSessionMsg = "ztn stale session refused; a ztn client redoes a full handshake"

// TestExpiredResumedSessionIsRoutine: web's certificate is replaced during
// rotation, and the old one expires just as web's cached session, which
// still carries it, is offered again. crypto/tls resumes it (its own check
// of the certificate's expiry came a moment earlier), and ztn's
// re-verification refuses it as expired; web redoes a full handshake with
// its new certificate, so the connection succeeds. That is routine: api
// logs it at Debug, never at Warn, and counts it in ztn.handshakes under
// result stale_session, not rejected.
//
// The race at the expiry instant is microseconds wide, so the test widens
// it: api's verifier runs on a clock an hour and a minute ahead (a fake
// clock for a fault real time cannot produce on demand), so web's first
// certificate (1h) is expired to it and its new one (2h) is not, while
// crypto/tls still sees the first one valid. The root-gone case runs on
// real time in TestStaleResumedSessionFallsBackToFullHandshake.
func TestExpiredResumedSessionIsRoutine(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	logger, lines := logtest.Capture(t)
	m := newTestMesh(t)
	m.allow(t, "web->api")
	issueTTL := func(ttl time.Duration) *x509svid.SVID {
		id, err := m.CA().Issuer("dc1", "web", ttl).Issue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return id.SVID
	}
	webSrc := &switchSource{svid: issueTTL(time.Hour), bundle: m.CA().Bundle()}
	apiSrc := &switchSource{svid: issue(t, m.CA(), "api"), bundle: m.CA().Bundle()}
	api := m.service(t, "api", WithSource(apiSrc), WithLogger(logger), WithMeterProvider(mp))
	var skew atomic.Int64
	api.inVerify.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	web := m.service(t, "web", WithSource(webSrc))
	serve(t, listen(t, api), echo)

	callOnce(t, web, "api", "1")

	webSrc.set(issueTTL(2*time.Hour), nil) // rotation
	skew.Store(int64(time.Hour + time.Minute))

	if callOnce(t, web, "api", "2").DidResume {
		t.Fatal("the session of the expired certificate was resumed")
	}

	// The refusal is recorded after the client has gone on: wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for logtest.Count(lines(), "DEBUG", staleSessionMsg, "result=stale_session", "resumed=true", "certificate has expired") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no stale session record at Debug in %q", lines())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := logtest.Count(lines(), "WARN"); n != 0 {
		t.Errorf("%d Warn records for a routine stale session: %q", n, lines())
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	server := attribute.String("side", "server")
	for result, want := range map[string]int64{"stale_session": 1, "rejected": 0, "ok": 2} {
		if got := sumOf(t, rm, "ztn.handshakes", server, attribute.String("result", result)); got != want {
			t.Errorf("ztn.handshakes{side=server, result=%s} = %d, want %d", result, got, want)
		}
	}
}
