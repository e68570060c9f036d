package ztnet

import (
	"context"
	"log/slog"
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

// staleSessionCase is web calling api, whose Debug log and metrics the
// test reads; web's certificate is the one the test gives and can switch.
type staleSessionCase struct {
	m      *testMesh
	web    *Service
	webSrc *switchSource
	api    *Service
	lines  func() []string
	reader *sdkmetric.ManualReader
}

func newStaleSessionCase(t *testing.T, webTTL time.Duration) *staleSessionCase {
	c := &staleSessionCase{reader: sdkmetric.NewManualReader()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(c.reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	var logger *slog.Logger
	logger, c.lines = logtest.Capture(t)
	c.m = newTestMesh(t)
	c.m.allow(t, "web->api")
	c.webSrc = &switchSource{svid: c.issueWeb(t, webTTL), bundle: c.m.CA().Bundle()}
	apiSrc := &switchSource{svid: issue(t, c.m.CA(), "api"), bundle: c.m.CA().Bundle()}
	c.api = c.m.service(t, "api", WithSource(apiSrc), WithLogger(logger), WithMeterProvider(mp))
	c.web = c.m.service(t, "web", WithSource(c.webSrc))
	return c
}

func (c *staleSessionCase) issueWeb(t *testing.T, ttl time.Duration) *x509svid.SVID {
	id, err := c.m.CA().Issuer("dc1", "web", ttl).Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return id.SVID
}

// check waits for api's Debug record of the stale session, whose reason
// holds why, and checks that api logged no Warn and counted one
// stale_session handshake, no rejection, and ok ones.
func (c *staleSessionCase) check(t *testing.T, resumed, why string, ok int64) {
	t.Helper()
	// The refusal is recorded after the client has gone on: wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for logtest.Count(c.lines(), "DEBUG", staleSessionMsg, "result=stale_session", "resumed="+resumed, why) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no stale session record at Debug saying %q in %q", why, c.lines())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := logtest.Count(c.lines(), "WARN"); n != 0 {
		t.Errorf("%d Warn records for a routine stale session: %q", n, c.lines())
	}
	if n := logtest.Count(c.lines(), "INFO", "ztn connection refused"); n != 0 {
		t.Errorf("%d refusals at Info for a routine stale session: %q", n, c.lines())
	}
	var rm metricdata.ResourceMetrics
	if err := c.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	server := attribute.String("side", "server")
	for result, want := range map[string]int64{"stale_session": 1, "rejected": 0, "error": 0, "ok": ok} {
		if got := sumOf(t, rm, "ztn.handshakes", server, attribute.String("result", result)); got != want {
			t.Errorf("ztn.handshakes{side=server, result=%s} = %d, want %d", result, got, want)
		}
	}
}

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
	c := newStaleSessionCase(t, time.Hour)
	var skew atomic.Int64
	c.api.inVerify.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	serve(t, listen(t, c.api), echo)
	callOnce(t, c.web, "api", "1")

	c.webSrc.set(c.issueWeb(t, 2*time.Hour), nil) // rotation
	skew.Store(int64(time.Hour + time.Minute))
	if callOnce(t, c.web, "api", "2").DidResume {
		t.Fatal("the session of the expired certificate was resumed")
	}
	c.check(t, "true", "certificate has expired", 2)
}

// TestExpiredSessionNotTakenIsRoutine: the usual case, in real time. web's
// old certificate has expired when its session is offered again, so
// crypto/tls does not resume it; web, which resumes or gives up, aborts and
// redoes a full handshake. api logs that at Debug as a stale session, not
// as a failed handshake at Info.
func TestExpiredSessionNotTakenIsRoutine(t *testing.T) {
	c := newStaleSessionCase(t, 1500*time.Millisecond)
	serve(t, listen(t, c.api), echo)
	callOnce(t, c.web, "api", "1")
	old := c.webSrc.svid.Certificates[0]

	c.webSrc.set(c.issueWeb(t, time.Hour), nil) // rotation
	time.Sleep(time.Until(old.NotAfter) + 50*time.Millisecond)
	if callOnce(t, c.web, "api", "2").DidResume {
		t.Fatal("the session of the expired certificate was resumed")
	}
	c.check(t, "false", "did not take", 2)
}
