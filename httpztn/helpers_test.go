package httpztn_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/internal/test/certstest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/ztnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var discard = meshtest.Discard()

// serveHTTP serves h for svc on a new httpztn listener and returns its
// address.
func serveHTTP(t testing.TB, svc *ztnet.Service, h http.Handler) string {
	t.Helper()
	l, err := httpztn.Listen(context.Background(), svc, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpztn.NewServer(svc, h)
	srv.ErrorLog = nil
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return l.Addr().String()
}

func newClient(t testing.TB, svc *ztnet.Service, opts ...httpztn.Option) *http.Client {
	c := httpztn.NewClient(svc, opts...)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// get does a request and returns the status and body.
func do(t testing.TB, c *http.Client, method, url string, hdr ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// svidFiles writes the certificate chain and key of service name, issued
// by ca, as PEM files for curl, and returns the TLS certificate too.
func svidFiles(t testing.TB, ca *certs.DevCA, name string) (certFile, keyFile string, cert tls.Certificate) {
	t.Helper()
	src := meshtest.DevSource(t, ca, name)
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	cert = tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
	for _, c := range svid.Certificates {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	certFile, keyFile = certstest.SVIDFiles(t, src, t.TempDir(), name)
	return certFile, keyFile, cert
}

var _ = net.Dial
