package ztnet

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/certs"
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

	c1, err := web.Dial(ctxTimeout(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c1, "1")
	c1.Close()
	c2, err := web.Dial(ctxTimeout(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	if !c2.ConnectionState().DidResume {
		t.Fatal("second connection did not resume the session")
	}
	roundTrip(t, c2, "2")
	c2.Close()

	m.allow(t, "other->api")
	_, err = web.Dial(ctxTimeout(t, 5*time.Second), "api")
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
	webSrc, err := m.CA().Source(ctxTimeout(t, 5*time.Second), "dc1", "web", time.Hour, certs.WithLogger(discardLogger))
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
