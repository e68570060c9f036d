package ztnet

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/poll"
)

func TestDialListenEcho(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	web := m.service(t, "web")
	serve(t, listen(t, api), func(c net.Conn) {
		id, ok := Peer(c)
		if !ok || id.String() != "spiffe://ztn.test/ns/default/dc/dc1/svc/web" {
			t.Errorf("server PeerID = %v, %v", id, ok)
		}
		echo(c)
	})

	c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.peerID.String(); got != "spiffe://ztn.test/ns/default/dc/dc1/svc/api" {
		t.Fatalf("client PeerID = %s", got)
	}
	if cs := c.ConnectionState(); cs.Version != 0x0304 {
		t.Fatalf("TLS version %x, want 1.3", cs.Version)
	}
	roundTrip(t, c, "hello through ztn")
	c.Close()

	rec := m.logs.waitFor(t, "ztn connection", func(r logRecord) bool { return r.attrs["side"] == "server" })
	if rec.attrs["source"] != "spiffe://ztn.test/ns/default/dc/dc1/svc/web" ||
		rec.attrs["destination"] != "spiffe://ztn.test/ns/default/dc/dc1/svc/api" ||
		rec.attrs["decision"] != "allow" || rec.attrs["bytes_in"] != "17" || rec.attrs["bytes_out"] != "17" ||
		!strings.Contains(rec.attrs["reason"], "web") {
		t.Fatalf("access record = %v", rec.attrs)
	}
}

func TestDialDeniedFailsInDialWithReason(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	intruder := m.service(t, "intruder")
	serve(t, listen(t, api), echo)

	_, err := intruder.Dial(poll.Context(t, 5*time.Second), "api")
	var denied *DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("Dial err = %v, want a DeniedError", err)
	}
	want := "ztnet: dial api: spiffe://ztn.test/ns/default/dc/dc1/svc/intruder denied: no intention matches (default deny)"
	if err.Error() != want {
		t.Fatalf("err = %q\nwant  %q", err, want)
	}
	rec := m.logs.waitFor(t, "ztn connection refused", func(logRecord) bool { return true })
	if rec.attrs["result"] != "denied" || !strings.Contains(rec.attrs["reason"], "no intention matches") {
		t.Fatalf("refusal record = %v", rec.attrs)
	}
	// The client's side of the refusal, in its own log.
	rec = m.logs.waitFor(t, "ztn dial refused", func(logRecord) bool { return true })
	if rec.attrs["result"] != "denied" || rec.attrs["destination"] != "api" || rec.attrs["source"] != intruder.ID().String() ||
		!strings.Contains(rec.attrs["reason"], "intruder denied: no intention matches (default deny)") {
		t.Fatalf("client refusal record = %v", rec.attrs)
	}
}

func TestDialNoInstance(t *testing.T) {
	m := newTestMesh(t)
	web := m.service(t, "web")
	_, err := web.Dial(context.Background(), "fortune")
	if !errors.Is(err, ErrNoInstance) || err.Error() != "ztnet: dial fortune: no healthy instance" {
		t.Fatalf("err = %v", err)
	}
}

func TestDialBalancesAndFailsOver(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	web := m.service(t, "web")
	var listeners []net.Listener
	for i := range 3 {
		api := m.service(t, "api")
		l := listen(t, api)
		listeners = append(listeners, l)
		name := string(rune('a' + i))
		serve(t, l, func(c net.Conn) { io.WriteString(c, name) })
	}
	fetch := func() string {
		c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		return string(b)
	}
	seen := map[string]int{}
	for range 9 {
		seen[fetch()]++
	}
	if len(seen) != 3 || seen["a"] != 3 {
		t.Fatalf("round robin served %v, want 3 each", seen)
	}

	// An instance that dies without deregistering (its port closed behind
	// the catalog's back) is skipped for the next one.
	m.Catalog().Set("api", append(m.mustResolve(t, "api"), instanceAt("dead", deadAddr(t)))...)
	for range 8 {
		if got := fetch(); got == "" {
			t.Fatal("empty fetch")
		}
	}
	for _, l := range listeners {
		l.Close()
	}
	_, err := web.Dial(poll.Context(t, 5*time.Second), "api")
	if err == nil || !strings.Contains(err.Error(), "dial api") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("all down: err = %v", err)
	}
}

func TestSlowClientDoesNotBlockOthers(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api", WithHandshakeTimeout(300*time.Millisecond))
	web := m.service(t, "web")
	l := listen(t, api)
	serve(t, l, echo)

	silent, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "x")
	c.Close()
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("dial took %v behind a silent client", d)
	}
	// The silent client is dropped once the handshake deadline passes.
	_ = silent.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("silent client was not dropped")
	}
	m.logs.waitFor(t, "ztn connection refused", func(r logRecord) bool {
		return r.attrs["result"] == "error" && strings.Contains(r.attrs["reason"], "timeout")
	})
}

func TestPolicyChangeClosesOpenConnections(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api", "other->api")
	api := m.service(t, "api")
	web := m.service(t, "web")
	other := m.service(t, "other")
	serve(t, listen(t, api), echo)

	cw, err := web.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	defer cw.Close()
	co, err := other.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	roundTrip(t, cw, "1")
	roundTrip(t, co, "1")

	m.allow(t, "other->api") // web is no longer allowed
	start := time.Now()
	_ = cw.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := cw.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("revoked conn read: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("revocation took %v", d)
	}
	roundTrip(t, co, "still allowed")
	rec := m.logs.waitFor(t, "ztn connection revoked", func(logRecord) bool { return true })
	if !strings.Contains(rec.attrs["source"], "/svc/web") || !strings.Contains(rec.attrs["reason"], "no intention matches") {
		t.Fatalf("revocation record = %v", rec.attrs)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestCertificateRotationDuringTraffic(t *testing.T) {
	// X.509 times have one-second resolution: 4s leaves live 3–4s, renewed
	// at 60–90% of that, which leaves slack for a loaded race-detector run.
	m := newTestMesh(t, WithDevCertTTL(4*time.Second))
	m.allow(t, "web->api")
	api := m.service(t, "api")
	web := m.service(t, "web")
	serve(t, listen(t, api), echo)

	serials := map[string]bool{}
	deadline := time.Now().Add(4500 * time.Millisecond)
	n := 0
	for time.Now().Before(deadline) {
		c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
		if err != nil {
			t.Fatalf("dial %d during rotation: %v", n, err)
		}
		roundTrip(t, c, "r")
		serials[c.ConnectionState().PeerCertificates[0].SerialNumber.String()] = true
		c.Close()
		n++
		time.Sleep(20 * time.Millisecond)
	}
	if len(serials) < 2 {
		t.Fatalf("server certificate never rotated over %d connections", n)
	}
}

func TestRootRotationDuringTraffic(t *testing.T) {
	// Long-lived leaves: what moves them to the new root is the rotation
	// itself (each Rotator re-issues within 1s of it).
	m := newTestMesh(t, WithDevCertTTL(time.Hour))
	m.allow(t, "web->api")
	api := m.service(t, "api")
	// Full handshakes, so each connection shows the server's current
	// certificate (a resumed session carries the one it started with).
	web := m.service(t, "web", WithoutResumption())
	serve(t, listen(t, api), echo)

	issuers := map[string]bool{}
	done := time.Now().Add(4 * time.Second)
	rotated := false
	for n := 0; time.Now().Before(done); n++ {
		if !rotated && n == 10 {
			if err := m.CA().RotateRoot(); err != nil {
				t.Fatal(err)
			}
			rotated = true
		}
		c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
		if err != nil {
			t.Fatalf("dial %d across a root rotation: %v", n, err)
		}
		roundTrip(t, c, "r")
		issuers[string(c.ConnectionState().PeerCertificates[0].AuthorityKeyId)] = true
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	if len(issuers) < 2 {
		t.Fatal("server never moved to the new root")
	}
}
