package certs

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn/internal/test/certstest"
)

// issue returns an identity of ca for service in dc1.
func issue(t *testing.T, ca *DevCA, service string, ttl time.Duration) *Identity {
	t.Helper()
	id, err := ca.Issuer("dc1", service, ttl).Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newTestStatic(t *testing.T, svid *x509svid.SVID, bundles ...*x509bundle.Bundle) *Static {
	t.Helper()
	s, err := NewStatic(svid, bundles...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// echoServer serves mutual TLS with src on a local port, authorizing
// authorized, and echoes one line per connection prefixed with the
// client's SPIFFE ID.
func echoServer(t *testing.T, src Source, authorized tlsconfig.Authorizer) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsconfig.MTLSServerConfig(src, src, authorized))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(conn).ReadString('\n')
				if err != nil {
					return
				}
				peer, _ := x509svid.IDFromCert(conn.(*tls.Conn).ConnectionState().PeerCertificates[0])
				fmt.Fprintf(conn, "%s %s", peer, line)
			}()
		}
	}()
	return ln.Addr().String()
}

// call dials addr with src, authorizing authorized, and returns the echo.
func call(src Source, addr string, authorized tlsconfig.Authorizer) (string, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: tlsconfig.MTLSClientConfig(src, src, authorized)}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(conn, "hello"); err != nil {
		return "", err
	}
	return bufio.NewReader(conn).ReadString('\n')
}

// TestStaticTLS: two services on certificates they already hold talk
// mutual TLS, one of them from a federated trust domain, and each sees the
// other's SPIFFE ID; after Close the client's handshake fails.
func TestStaticTLS(t *testing.T) {
	ca := newTestCA(t)
	partnerTD := spiffeidTD(t, "partner.test")
	partner, err := NewDevCA(partnerTD)
	if err != nil {
		t.Fatal(err)
	}
	api := issue(t, ca, "api", time.Hour)
	web := issue(t, partner, "web", time.Hour)
	server := newTestStatic(t, api.SVID, ca.Bundle(), partner.Bundle())
	client := newTestStatic(t, web.SVID, partner.Bundle(), ca.Bundle())

	addr := echoServer(t, server, tlsconfig.AuthorizeID(web.SVID.ID))
	got, err := call(client, addr, tlsconfig.AuthorizeID(api.SVID.ID))
	if err != nil {
		t.Fatal(err)
	}
	if want := web.SVID.ID.String() + " hello\n"; got != want {
		t.Fatalf("echo %q, want %q", got, want)
	}

	// A client whose bundle lacks the server's trust domain cannot verify it.
	lone := newTestStatic(t, web.SVID, partner.Bundle())
	if _, err := call(lone, addr, tlsconfig.AuthorizeAny()); err == nil {
		t.Fatal("a client without the server's bundle connected")
	}

	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetX509SVID(); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetX509SVID after Close: %v, want ErrClosed", err)
	}
	if _, err := client.GetX509BundleForTrustDomain(testTD); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetX509BundleForTrustDomain after Close: %v, want ErrClosed", err)
	}
	if _, err := call(client, addr, tlsconfig.AuthorizeID(api.SVID.ID)); err == nil {
		t.Fatal("a closed Static still connects")
	}
	if err := client.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestStaticExpiry: a Static hands out its SVID until the leaf expires,
// then fails closed.
func TestStaticExpiry(t *testing.T) {
	ca := newTestCA(t)
	id := issue(t, ca, "web", 1500*time.Millisecond)
	s := newTestStatic(t, id.SVID, id.Bundles...)
	if _, err := s.GetX509SVID(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(id.SVID.Certificates[0].NotAfter) + 10*time.Millisecond)
	if _, err := s.GetX509SVID(); err == nil || !strings.Contains(err.Error(), "certs: static: SVID for spiffe://ztn.test/ns/default/dc/dc1/svc/web expired at") {
		t.Fatalf("GetX509SVID after expiry: %v, want an expiry error", err)
	}
}

func TestStaticRejects(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	good := issue(t, ca, "web", time.Hour)
	api := issue(t, ca, "api", time.Hour)
	expiredLeaf, expiredKey := certstest.SignLeaf(t, ca, certstest.LeafSpec{
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	caLeaf, caKey := certstest.SignLeaf(t, ca, certstest.LeafSpec{CA: true})
	webID := good.SVID.ID
	for _, tc := range []struct {
		name    string
		svid    *x509svid.SVID
		bundles []*x509bundle.Bundle
		want    string
	}{
		{"no SVID", nil, []*x509bundle.Bundle{ca.Bundle()}, "certs: static: no SVID"},
		{"no certificate", &x509svid.SVID{ID: webID, PrivateKey: good.SVID.PrivateKey}, []*x509bundle.Bundle{ca.Bundle()}, "no certificate"},
		{"another leaf's key", &x509svid.SVID{ID: webID, Certificates: good.SVID.Certificates, PrivateKey: api.SVID.PrivateKey}, []*x509bundle.Bundle{ca.Bundle()}, "the private key does not match"},
		{"ID not the leaf's", &x509svid.SVID{ID: api.SVID.ID, Certificates: good.SVID.Certificates, PrivateKey: good.SVID.PrivateKey}, []*x509bundle.Bundle{ca.Bundle()}, "but its leaf certificate's is"},
		{"a CA certificate", &x509svid.SVID{ID: webID, Certificates: []*x509.Certificate{caLeaf}, PrivateKey: caKey}, []*x509bundle.Bundle{ca.Bundle()}, "leaf certificate is a CA"},
		{"no bundle", good.SVID, nil, "no bundle for the SVID's trust domain ztn.test"},
		{"nil bundle", good.SVID, []*x509bundle.Bundle{ca.Bundle(), nil}, "nil bundle"},
		{"two bundles of its trust domain", good.SVID, []*x509bundle.Bundle{ca.Bundle(), other.Bundle()}, "two bundles for trust domain ztn.test"},
		{"another CA's bundle", good.SVID, []*x509bundle.Bundle{other.Bundle()}, "does not verify against its trust domain's bundle"},
		{"expired", &x509svid.SVID{ID: webID, Certificates: []*x509.Certificate{expiredLeaf}, PrivateKey: expiredKey}, []*x509bundle.Bundle{ca.Bundle()}, "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewStatic(tc.svid, tc.bundles...)
			if err == nil {
				s.Close()
				t.Fatal("NewStatic accepted it")
			}
			if !strings.HasPrefix(err.Error(), "certs: static: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want the prefix \"certs: static: \" and %q", err, tc.want)
			}
		})
	}
	if _, err := NewStatic(good.SVID, ca.Bundle()); err != nil {
		t.Fatalf("the good SVID: %v", err)
	}
}
