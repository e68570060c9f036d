package httpztn_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/ztnet"
)

// pairedRates alternates short slices of each contender (as
// ztnet/paired_bench_test.go does) and returns operations per second.
func pairedRates(b *testing.B, rounds, concurrency int, contenders []func() error) []float64 {
	const slice = 150 * time.Millisecond
	ops := make([]int64, len(contenders))
	spent := make([]time.Duration, len(contenders))
	for range rounds {
		for i, op := range contenders {
			var n atomic.Int64
			var wg sync.WaitGroup
			stop := time.Now().Add(slice)
			start := time.Now()
			for range concurrency {
				wg.Go(func() {
					for time.Now().Before(stop) {
						if err := op(); err != nil {
							b.Error(err)
							return
						}
						n.Add(1)
					}
				})
			}
			wg.Wait()
			spent[i] += time.Since(start)
			ops[i] += n.Load()
		}
	}
	rates := make([]float64, len(contenders))
	for i := range rates {
		rates[i] = float64(ops[i]) / spent[i].Seconds()
	}
	return rates
}

// BenchmarkPairedRequests reports HTTP/2 GETs per second through httpztn
// and through net/http over plain crypto/tls mutual TLS (same certificates),
// and the ratio.
func BenchmarkPairedRequests(b *testing.B) {
	m := newMesh(b)
	intentions(b, m, allowWebToAPI)
	api, web := service(b, m, "api"), service(b, m, "web")
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	serveHTTP(b, api, ok)
	zc := newClient(b, web)

	roots := x509.NewCertPool()
	for _, r := range m.CA().Bundle().X509Authorities() {
		roots.AddCert(r)
	}
	_, _, apiCert := svidFiles(b, m.CA(), "api")
	_, _, webCert := svidFiles(b, m.CA(), "web")
	raw := httptest.NewUnstartedServer(ok)
	raw.EnableHTTP2 = true
	raw.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{apiCert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots}
	raw.StartTLS()
	defer raw.Close()
	rc := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{webCert}, InsecureSkipVerify: true}}}
	defer rc.CloseIdleConnections()

	get := func(c *http.Client, url string) func() error {
		return func() error {
			resp, err := c.Get(url)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.Body.Close()
		}
	}
	for _, conc := range []int{1, 16} {
		b.Run("c="+map[int]string{1: "1", 16: "16"}[conc], func(b *testing.B) {
			var rates []float64
			for b.Loop() {
				rates = pairedRates(b, 10, conc, []func() error{get(rc, raw.URL+"/"), get(zc, "http://api/")})
			}
			b.ReportMetric(rates[0], "tls-reqs/s")
			b.ReportMetric(rates[1], "ztn-reqs/s")
			b.ReportMetric(rates[1]/rates[0], "ztn/tls")
		})
	}
}

// BenchmarkL7Decision measures one per-request authorization
// (Service.AuthorizeRequest) under an L7 intention with three permissions.
func BenchmarkL7Decision(b *testing.B) {
	m := newMesh(b)
	intentions(b, m, l7Intentions)
	api := service(b, m, "api")
	peer := ztnet.ServiceID{TrustDomain: api.Self().TrustDomain, Namespace: "default", Partition: "default", Datacenter: "dc1", Name: "web"}
	req := &authz.HTTPRequest{Path: "/upload", Method: "POST", Header: http.Header{"X-Tenant": {"blue"}}}
	ctx := context.Background()
	for b.Loop() {
		if !api.AuthorizeRequest(ctx, peer, req).Allowed {
			b.Fatal("denied")
		}
	}
}
