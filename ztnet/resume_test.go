package ztnet

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/test/poll"
)

// TestResumptionIsDefaultAndReauthorized checks that Dial resumes sessions
// and that a resumed session is still authorized: after the intention flips
// to deny, the next (resumed) connection is refused.
func TestResumptionIsDefaultAndReauthorized(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	web := m.service(t, "web")
	serve(t, listen(t, api), echo)

	c1, err := web.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c1, "1")
	c1.Close()
	c2, err := web.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	if !c2.ConnectionState().DidResume {
		t.Fatal("second connection did not resume the session")
	}
	roundTrip(t, c2, "2")
	c2.Close()

	m.allow(t, "other->api")
	_, err = web.Dial(poll.Context(t, 5*time.Second), "api")
	var denied *DeniedError
	if !errors.As(err, &denied) || !strings.Contains(err.Error(), "no intention matches") {
		t.Fatalf("dial after deny: %v", err)
	}
	rec := m.logs.waitFor(t, "ztn connection refused", func(r logRecord) bool { return r.attrs["result"] == "denied" })
	if rec.attrs["resumed"] != "true" {
		t.Fatalf("the refused connection was not a resumed one: %v", rec.attrs)
	}
}

// TestResumptionBypassClosedForPlainTLSClients is the bypass go-spiffe and
// Consul's native package have (they authorize in VerifyPeerCertificate,
// which resumption skips), run against ztn with a plain crypto/tls client.
func TestResumptionBypassClosedForPlainTLSClients(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	l := listen(t, api)
	serve(t, l, echo)
	webSrc, err := m.CA().Source(poll.Context(t, 5*time.Second), "dc1", "web", time.Hour, certs.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	defer webSrc.Close()
	svid, err := webSrc.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
		ClientSessionCache: tls.NewLRUClientSessionCache(8),
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{svid.Certificates[0].Raw},
			PrivateKey:  svid.PrivateKey,
		}},
	}
	connect := func() (*tls.Conn, error) {
		raw, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c := tls.Client(raw, cfg)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "p"); err != nil {
			return c, err
		}
		_, err = io.ReadFull(c, make([]byte, 1))
		return c, err
	}
	c, err := connect()
	if err != nil {
		t.Fatalf("first connection: %v", err)
	}
	c.Close()
	c, err = connect()
	if err != nil || !c.ConnectionState().DidResume {
		t.Fatalf("second connection: resumed=%v err=%v", c.ConnectionState().DidResume, err)
	}
	c.Close()

	m.allow(t, "other->api")
	c, err = connect()
	defer c.Close()
	if !c.ConnectionState().DidResume {
		t.Fatal("the connection after the deny did not try resumption")
	}
	// The refusal reaches the client as a "bad certificate" alert, or as a
	// broken pipe if its write raced the server's close.
	if err == nil {
		t.Fatal("resumed connection after deny was served")
	}
	rec := m.logs.waitFor(t, "ztn connection refused", func(r logRecord) bool { return r.attrs["result"] == "denied" })
	if rec.attrs["resumed"] != "true" || !strings.Contains(rec.attrs["reason"], "no intention matches") {
		t.Fatalf("refusal = %v", rec.attrs)
	}
}

// switchSource is a Source whose SVID and bundle a test swaps at will.
type switchSource struct {
	mu     sync.Mutex
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
}

func (s *switchSource) set(svid *x509svid.SVID, bundle *x509bundle.Bundle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if svid != nil {
		s.svid = svid
	}
	if bundle != nil {
		s.bundle = bundle
	}
}
func (s *switchSource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.svid, nil
}
func (s *switchSource) GetX509BundleForTrustDomain(spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bundle, nil
}
func (s *switchSource) Close() error { return nil }

func issue(t *testing.T, ca *certs.DevCA, name string) *x509svid.SVID {
	t.Helper()
	id, err := ca.Issuer("dc1", name, time.Hour).Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return id.SVID
}

// TestStaleResumedSessionFallsBackToFullHandshake: a session resumed with
// certificates the server no longer trusts is refused, and Dial retries once
// with a full handshake and the current certificate instead of failing.
func TestStaleResumedSessionFallsBackToFullHandshake(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	td := m.CA().TrustDomain()
	ca2, err := certs.NewDevCA(td)
	if err != nil {
		t.Fatal(err)
	}
	both := x509bundle.FromX509Authorities(td, append(m.CA().Bundle().X509Authorities(), ca2.Bundle().X509Authorities()...))
	apiSrc := &switchSource{svid: issue(t, m.CA(), "api"), bundle: both}
	webSrc := &switchSource{svid: issue(t, m.CA(), "web"), bundle: both}
	api := m.service(t, "api", WithSource(apiSrc))
	web := m.service(t, "web", WithSource(webSrc))
	serve(t, listen(t, api), echo)

	callOnce(t, web, "api", "1")

	// web moves to CA2; api stops trusting the first CA. web's cached
	// session still carries its CA1 certificate.
	webSrc.set(issue(t, ca2, "web"), nil)
	apiSrc.set(nil, x509bundle.FromX509Authorities(td, ca2.Bundle().X509Authorities()))
	// api's own certificate is from CA1, which web still trusts.

	if callOnce(t, web, "api", "2").DidResume {
		t.Fatal("the stale session was used")
	}
	rec := m.logs.waitFor(t, staleSessionMsg, func(r logRecord) bool { return r.attrs["resumed"] == "true" })
	if rec.level != slog.LevelDebug || rec.attrs["result"] != "stale_session" || !strings.Contains(rec.attrs["reason"], "unknown authority") {
		t.Fatalf("refusal of the stale session = %v %v", rec.level, rec.attrs)
	}
}

// fakeClock is a settable clock for the ticket sealer.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// acceptedStates serves l, echoing, and sends each accepted connection's TLS
// state to the returned channel.
func acceptedStates(t *testing.T, l net.Listener) <-chan tls.ConnectionState {
	states := make(chan tls.ConnectionState, 16)
	serve(t, l, func(c net.Conn) {
		states <- c.(*Conn).ConnectionState()
		echo(c)
	})
	return states
}

// TestResumptionKeyExchange: a full handshake uses the hybrid post-quantum
// group; a resumed one an X25519 share by default, the hybrid group with
// WithPostQuantumResumption. Both ends agree.
func TestResumptionKeyExchange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []Option
		resume tls.CurveID
	}{
		{"default", nil, tls.X25519},
		{"post-quantum resumption", []Option{WithPostQuantumResumption()}, tls.X25519MLKEM768},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestMesh(t)
			m.allow(t, "web->api")
			api := m.service(t, "api")
			web := m.service(t, "web", tc.opts...)
			states := acceptedStates(t, listen(t, api))
			for i, want := range []struct {
				resumed bool
				curve   tls.CurveID
			}{{false, tls.X25519MLKEM768}, {true, tc.resume}, {true, tc.resume}} {
				c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
				if err != nil {
					t.Fatal(err)
				}
				roundTrip(t, c, "x")
				cs, ss := c.ConnectionState(), <-states
				c.Close()
				if cs.DidResume != want.resumed || cs.CurveID != want.curve {
					t.Errorf("connection %d: client resumed=%v group=%v, want %v %v", i, cs.DidResume, cs.CurveID, want.resumed, want.curve)
				}
				if ss.DidResume != cs.DidResume || ss.CurveID != cs.CurveID {
					t.Errorf("connection %d: server resumed=%v group=%v, client %v %v", i, ss.DidResume, ss.CurveID, cs.DidResume, cs.CurveID)
				}
			}
		})
	}
}

// TestUnacceptedTicketRedoneAsHybridFullHandshake: when the server no longer
// opens the client's ticket (its key rotated out, as after a restart), the
// resumption attempt, which offered X25519 only, must not end as a full
// handshake without the post-quantum exchange: Dial redoes it as a hybrid
// full handshake, and the connection after that resumes again.
func TestUnacceptedTicketRedoneAsHybridFullHandshake(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	clock := &fakeClock{now: time.Now()}
	api.tickets.now = clock.Now
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	web := m.service(t, "web", WithMeterProvider(mp))
	states := acceptedStates(t, listen(t, api))
	dial := func() tls.ConnectionState { t.Helper(); return callOnce(t, web, "api", "x") }
	dial()
	if cs := dial(); !cs.DidResume {
		t.Fatal("second connection did not resume")
	}
	<-states
	<-states

	clock.Add(2 * ticketKeyPeriod) // the ticket's key is now too old to open it
	cs := dial()
	if cs.DidResume || cs.CurveID != tls.X25519MLKEM768 {
		t.Fatalf("after the ticket key expired: resumed=%v group=%v, want a full hybrid handshake", cs.DidResume, cs.CurveID)
	}
	if ss := <-states; ss.DidResume || ss.CurveID != tls.X25519MLKEM768 {
		t.Fatalf("server accepted resumed=%v group=%v", ss.DidResume, ss.CurveID)
	}
	// The aborted attempt never reached Accept: the client refused it
	// (before sending its certificate) and the server logged that, as the
	// routine event it is.
	rec := m.logs.waitFor(t, staleSessionMsg, func(logRecord) bool { return true })
	if rec.level != slog.LevelDebug || rec.attrs["result"] != "stale_session" ||
		!strings.Contains(rec.attrs["reason"], "did not take") || !strings.Contains(rec.attrs["reason"], "bad certificate") {
		t.Errorf("server log for the aborted attempt: %v %v", rec.level, rec.attrs)
	}
	if cs := dial(); !cs.DidResume || cs.CurveID != tls.X25519 {
		t.Fatalf("next connection: resumed=%v group=%v, want resumed over X25519", cs.DidResume, cs.CurveID)
	}
	select {
	case ss := <-states:
		_ = ss
	case <-time.After(5 * time.Second):
		t.Fatal("the last connection was not accepted")
	}

	// How each Dial went, in ztn.dial.resumption; and in the client's
	// access records.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for outcome, want := range map[string]int64{"full": 1, "resumed": 2, "fallback": 1} {
		if got := sumOf(t, rm, "ztn.dial.resumption", attribute.String("outcome", outcome)); got != want {
			t.Errorf("ztn.dial.resumption{outcome=%s} = %d, want %d", outcome, got, want)
		}
	}
	var resumedRecs int
	for _, r := range m.logs.find("ztn connection") {
		if r.attrs["side"] == "client" && r.attrs["resumed"] == "true" {
			resumedRecs++
		}
	}
	if resumedRecs != 2 {
		t.Errorf("%d client access records with resumed=true, want 2", resumedRecs)
	}
}
