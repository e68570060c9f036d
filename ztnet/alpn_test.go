package ztnet

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/internal/test/poll"
)

func TestProtocolsNegotiated(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	web := m.service(t, "web")
	l, err := api.Listen(context.Background(), "tcp", "127.0.0.1:0", WithProtocols("h2", "http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	serverProto := make(chan string, 10)
	serve(t, l, func(c net.Conn) { serverProto <- c.(*Conn).NegotiatedProtocol(); echo(c) })

	for _, tc := range []struct {
		opts []DialOption
		want string
	}{
		{nil, ""},
		{[]DialOption{WithProtocols("h2")}, "h2"},
		{[]DialOption{WithProtocols("http/1.1")}, "http/1.1"},
		{[]DialOption{WithProtocols("http/1.1", "h2")}, "h2"}, // server preference
		{[]DialOption{WithProtocols("spdy/3", "http/1.1")}, "http/1.1"},
	} {
		c, err := web.Dial(poll.Context(t, 5*time.Second), "api", tc.opts...)
		if err != nil {
			t.Fatalf("%v: %v", tc.opts, err)
		}
		if got := c.NegotiatedProtocol(); got != tc.want {
			t.Errorf("%v: client NegotiatedProtocol = %q, want %q", tc.opts, got, tc.want)
		}
		roundTrip(t, c, "x")
		if got := <-serverProto; got != tc.want {
			t.Errorf("%v: server NegotiatedProtocol = %q, want %q", tc.opts, got, tc.want)
		}
		c.Close()
	}
	// DialAddress takes the same options.
	c, err := web.dialAddress(poll.Context(t, 5*time.Second), "api", l.Addr().String(), WithProtocols("h2"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.NegotiatedProtocol(); got != "h2" {
		t.Fatalf("DialAddress NegotiatedProtocol = %q", got)
	}
}

func TestProtocolsRefusedByPlainListener(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	web := m.service(t, "web")
	serve(t, listen(t, api), echo)
	_, err := web.Dial(poll.Context(t, 5*time.Second), "api", WithProtocols("h2"))
	if err == nil || !strings.Contains(err.Error(), "application protocol") {
		t.Fatalf("Dial h2 to a plain listener: err = %v, want no application protocol", err)
	}
}

func TestProtocolsPlainTLSClient(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	l, err := api.Listen(context.Background(), "tcp", "127.0.0.1:0", WithProtocols("h2", "http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	serverProto := make(chan string, 1)
	serve(t, l, func(c net.Conn) { serverProto <- c.(*Conn).NegotiatedProtocol(); echo(c) })
	cfg := plainClientConfig(t, m, "web", "h2")
	c, err := tls.Dial("tcp", l.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.ConnectionState().NegotiatedProtocol; got != "h2" {
		t.Fatalf("plain TLS client negotiated %q", got)
	}
	roundTrip(t, c, "plain")
	if got := <-serverProto; got != "h2" {
		t.Fatalf("server NegotiatedProtocol = %q", got)
	}
}

const l7Intentions = `[{"Kind":"service-intentions","Name":"api","Sources":[
  {"Name":"web","Permissions":[{"Action":"allow","HTTP":{"PathPrefix":"/ok","Methods":["GET"]}}]}]}]`

func TestL7OnlyIntentionNeedsL7Listener(t *testing.T) {
	m := newTestMesh(t)
	m.intentions(t, l7Intentions)
	api := m.service(t, "api")
	web := m.service(t, "web")

	plain := listen(t, api)
	serve(t, plain, echo)
	_, err := web.dialAddress(poll.Context(t, 5*time.Second), "api", plain.Addr().String())
	var denied *DeniedError
	if !errors.As(err, &denied) || !strings.Contains(denied.Reason, "L7 permissions only") {
		t.Fatalf("plain listener: err = %v, want a denial for L7 permissions only", err)
	}

	l7, err := api.Listen(context.Background(), "tcp", "127.0.0.1:0", WithProtocols("h2"), withL7Enforced())
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan *Conn, 1)
	serve(t, l7, func(c net.Conn) { accepted <- c.(*Conn); echo(c) })
	c, err := web.dialAddress(poll.Context(t, 5*time.Second), "api", l7.Addr().String(), WithProtocols("h2"))
	if err != nil {
		t.Fatalf("L7 listener: %v", err)
	}
	defer c.Close()
	roundTrip(t, c, "admitted")
	sc := <-accepted

	// Per request: the permission decides; no match falls to the default.
	d := api.authorizeRequest(context.Background(), sc.peer, &authz.HTTPRequest{Path: "/ok/1", Method: http.MethodGet})
	if !d.Allowed || d.Kind() != authz.KindL7Permission {
		t.Fatalf("GET /ok/1: %v", d)
	}
	d = api.authorizeRequest(context.Background(), sc.peer, &authz.HTTPRequest{Path: "/ok/1", Method: http.MethodPost})
	if d.Allowed || d.Kind() != authz.KindL7NoMatch {
		t.Fatalf("POST /ok/1: %v", d)
	}

	// A policy change re-checks live connections the way they were admitted:
	// the L7 connection stays open.
	m.intentions(t, strings.Replace(l7Intentions, "/ok", "/fine", 1))
	time.Sleep(100 * time.Millisecond)
	roundTrip(t, c, "still open")
	// Until web loses its intention.
	m.intentions(t, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"deny"}]}]`)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after web was denied")
	}
}

// A server that does not speak ALPN at all (a plain TLS server with the
// mesh's certificate) completes the handshake with no protocol: Dial with
// WithProtocols must fail, as documented, not return a conn without one.
func TestProtocolsRefusedByServerWithoutALPN(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	web := m.service(t, "web", WithoutResumption())
	noALPN := api.serverTLS.Clone()
	noALPN.NextProtos = nil
	addr := tlsServer(t, noALPN, func(tc *tls.Conn) { _, _ = tc.Read(make([]byte, 1)) })

	_, err := web.dialAddress(poll.Context(t, 5*time.Second), "api", addr, WithProtocols("h2"))
	if err == nil || !strings.Contains(err.Error(), "no application protocol") {
		t.Fatalf("Dial h2 to a server without ALPN: err = %v, want no application protocol", err)
	}
	// Without WithProtocols the same server is a plain TLS server: Dial
	// succeeds (it cannot learn a verdict; a refusal would show at the
	// first read).
	c, err := web.dialAddress(poll.Context(t, 5*time.Second), "api", addr)
	if err != nil {
		t.Fatalf("Dial without protocols to a server without ALPN: %v", err)
	}
	c.Close()
}
