package ztnet

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/certs"
)

// leafTemplate returns a client leaf template shaped like an SVID.
func leafTemplate(uris ...string) *x509.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	for _, u := range uris {
		p, err := url.Parse(u)
		if err != nil {
			panic(err)
		}
		tmpl.URIs = append(tmpl.URIs, p)
	}
	return tmpl
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signedBy returns a TLS certificate for tmpl signed by ca.
func signedBy(t testing.TB, ca *certs.DevCA, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	k := newKey(t)
	cert, err := ca.SignCertificate(tmpl, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: k, Leaf: cert}
}

// selfSigned returns a TLS certificate for tmpl signed by its own key.
func selfSigned(t testing.TB, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	k := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), crypto.Signer(k))
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// TestAttackerMatrix connects to a ztnet listener with every kind of bad
// client and checks each is refused, for its own reason, in the log and the
// metrics, without ever reaching Accept.
func TestAttackerMatrix(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	l := listen(t, api)
	accepted := make(chan net.Conn, 16)
	serve(t, l, func(c net.Conn) { accepted <- c; echo(c) })

	const webID = "spiffe://ztn.test/ns/default/dc/dc1/svc/web"
	otherCA, err := certs.NewDevCA(spiffeid.RequireTrustDomainFromString("ztn.test"))
	if err != nil {
		t.Fatal(err)
	}
	evilCA, err := certs.NewDevCA(spiffeid.RequireTrustDomainFromString("evil.test"))
	if err != nil {
		t.Fatal(err)
	}
	expired := leafTemplate(webID)
	expired.NotBefore, expired.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	future := leafTemplate(webID)
	future.NotBefore, future.NotAfter = time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
	dnsOnly := leafTemplate()
	dnsOnly.DNSNames = []string{"web.service.consul"}

	tls13 := func(cert *tls.Certificate) *tls.Config {
		c := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
		if cert != nil {
			c.Certificates = []tls.Certificate{*cert}
		}
		return c
	}
	cert := func(c tls.Certificate) *tls.Certificate { return &c }

	for _, tc := range []struct {
		name   string
		cfg    *tls.Config // nil: send plaintext
		result string
		reason string
	}{
		{"no client certificate", tls13(nil), "rejected", "peer presented no certificate"},
		{"self-signed with the right SPIFFE ID", tls13(cert(selfSigned(t, leafTemplate(webID)))), "rejected", "certificate signed by unknown authority"},
		{"certificate from another CA", tls13(cert(signedBy(t, otherCA, leafTemplate(webID)))), "rejected", "certificate signed by unknown authority"},
		{"another trust domain", tls13(cert(signedBy(t, evilCA, leafTemplate("spiffe://evil.test/ns/default/dc/dc1/svc/web")))), "rejected", `trust domain "evil.test", not the local "ztn.test"`},
		{"expired", tls13(cert(signedBy(t, m.CA(), expired))), "rejected", "certificate has expired"},
		{"not yet valid", tls13(cert(signedBy(t, m.CA(), future))), "rejected", "is before"},
		{"DNS SAN only", tls13(cert(signedBy(t, m.CA(), dnsOnly))), "rejected", "no URI SAN"},
		{"two URI SANs", tls13(cert(signedBy(t, m.CA(), leafTemplate(webID, "spiffe://ztn.test/ns/default/dc/dc1/svc/api")))), "rejected", "2 URI SANs"},
		{"non-service SPIFFE ID", tls13(cert(signedBy(t, m.CA(), leafTemplate("spiffe://ztn.test/agent/client/dc/dc1/id/n1")))), "rejected", "not a service identity"},
		{"TLS 1.2 only", &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{signedBy(t, m.CA(), leafTemplate(webID))}}, "protocol", "unsupported versions"},
		{"plaintext", nil, "protocol", "does not look like a TLS handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(m.logs.find("ztn connection refused"))
			raw, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
			if tc.cfg == nil {
				io.WriteString(raw, "GET /fortune HTTP/1.0\r\n\r\n")
				if n, _ := raw.Read(make([]byte, 64)); n > 0 && !strings.HasPrefix(tc.name, "plain") {
					t.Fatal("plaintext got an answer")
				}
			} else {
				c := tls.Client(raw, tc.cfg)
				herr := c.Handshake()
				if herr == nil {
					// TLS 1.3: the client finishes before the server judges
					// its certificate; the refusal arrives on the first read.
					_, _ = c.Write([]byte("x"))
					if _, rerr := c.Read(make([]byte, 1)); rerr == nil {
						t.Fatal("bad client got data back")
					}
				}
			}
			deadline := time.Now().Add(5 * time.Second)
			recs := m.logs.find("ztn connection refused")
			for len(recs) == before && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
				recs = m.logs.find("ztn connection refused")
			}
			time.Sleep(20 * time.Millisecond)
			if recs = m.logs.find("ztn connection refused"); len(recs) != before+1 {
				t.Fatalf("%d refusal records, want %d", len(recs), before+1)
			}
			rec := recs[len(recs)-1]
			if rec.attrs["result"] != tc.result || !strings.Contains(rec.attrs["reason"], tc.reason) {
				t.Fatalf("refusal = %v; want result %q, reason containing %q", rec.attrs, tc.result, tc.reason)
			}
		})
	}
	select {
	case c := <-accepted:
		t.Fatalf("a bad client reached Accept: %v", c.RemoteAddr())
	default:
	}
}
