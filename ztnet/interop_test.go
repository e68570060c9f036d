package ztnet

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/certs"
)

// plainClientConfig is a crypto/tls client configuration with a certificate
// of service name from the mesh's CA, offering protos by ALPN, as Consul's
// Connect-native client ("h2") or curl ("h2", "http/1.1") would.
func plainClientConfig(t *testing.T, m *testMesh, name string, protos ...string) *tls.Config {
	t.Helper()
	src, err := m.CA().Source(context.Background(), "dc1", name, time.Hour, certs.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{PrivateKey: svid.PrivateKey}
	for _, c := range svid.Certificates {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true, // these tests check the server's side
		NextProtos:         protos,
	}
}

// A plain listener (no application protocols) serves TLS clients whose ALPN
// list has no ztn protocol, authorizing them in the handshake: Consul's
// Connect-native client always offers "h2", curl "h2,http/1.1".
func TestListenerServesClientsOfOtherALPN(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	l := listen(t, api)
	accepted := make(chan *Conn, 8)
	serve(t, l, func(c net.Conn) { accepted <- c.(*Conn); echo(c) })

	for _, protos := range [][]string{{"h2"}, {"h2", "http/1.1"}, {"spdy/3"}, nil} {
		t.Run(strings.Join(protos, ",")+"(allowed)", func(t *testing.T) {
			c, err := tls.Dial("tcp", l.Addr().String(), plainClientConfig(t, m, "web", protos...))
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			if got := c.ConnectionState().NegotiatedProtocol; got != "" {
				t.Fatalf("negotiated %q, want none", got)
			}
			roundTrip(t, c, "hello")
			if got := (<-accepted).peer.Name; got != "web" {
				t.Fatalf("accepted peer %q", got)
			}
		})
		t.Run(strings.Join(protos, ",")+"(denied)", func(t *testing.T) {
			before := len(m.logs.find("ztn connection refused"))
			c, err := tls.Dial("tcp", l.Addr().String(), plainClientConfig(t, m, "intruder", protos...))
			if err == nil {
				// TLS 1.3: the refusal shows at the first read.
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Write([]byte("x"))
				if _, err := c.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "bad certificate") {
					t.Fatalf("denied client read: %v, want a bad certificate alert", err)
				}
			}
			rec := m.logs.waitFor(t, "ztn connection refused", func(r logRecord) bool {
				return len(m.logs.find("ztn connection refused")) > before && r.attrs["result"] == "denied"
			})
			if rec.level != slog.LevelWarn || !strings.Contains(rec.attrs["reason"], "intruder") {
				t.Fatalf("refusal record %v at %v", rec.attrs, rec.level)
			}
		})
	}
}

// Clients that speak another protocol are refused, at Warn, with what they
// offered, so a misconfigured peer stands out in the log.
func TestProtocolRefusalsLoggedAtWarn(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	l := listen(t, api)
	serve(t, l, echo)

	for _, tc := range []struct {
		name    string
		dial    func(addr string)
		reason  string
		offered map[string]string
	}{
		{"plaintext", func(addr string) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: api\r\n\r\n"))
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Read(make([]byte, 64))
		}, "does not look like a TLS handshake", map[string]string{"offered": `not TLS (first bytes "GET /")`}},
		{"TLS 1.2", func(addr string) {
			cfg := plainClientConfig(t, m, "web", "h2")
			cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
			if c, err := tls.Dial("tcp", addr, cfg); err == nil {
				c.Close()
			}
		}, "unsupported versions", map[string]string{"offered_versions": "TLS 1.2", "offered_alpn": "h2"}},
		{"ztn protocol not served", func(addr string) {
			if c, err := tls.Dial("tcp", addr, plainClientConfig(t, m, "web", "ztn/1+grpc-exp")); err == nil {
				c.Close()
			}
		}, "application protocol", map[string]string{"offered_versions": "TLS 1.3", "offered_alpn": "ztn/1+grpc-exp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(m.logs.find("ztn connection refused"))
			tc.dial(l.Addr().String())
			rec := m.logs.waitFor(t, "ztn connection refused", func(logRecord) bool {
				return len(m.logs.find("ztn connection refused")) > before
			})
			rec = m.logs.find("ztn connection refused")[before]
			if rec.level != slog.LevelWarn || rec.attrs["result"] != "protocol" || !strings.Contains(rec.attrs["reason"], tc.reason) {
				t.Fatalf("refusal %v at %v; want Warn, result protocol, reason with %q", rec.attrs, rec.level, tc.reason)
			}
			for k, v := range tc.offered {
				if rec.attrs[k] != v {
					t.Errorf("%s = %q, want %q", k, rec.attrs[k], v)
				}
			}
		})
	}
}
