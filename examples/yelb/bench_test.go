package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/examples/yelb/internal/yelb"
)

// BenchmarkPath: votes/s and getvotes/s through gateway → ui → appserver →
// Postgres on ztn (the dev mesh: mutual TLS 1.3 on each hop, every request
// authorized), and through the same chain in plain HTTP (no TLS, no
// authorization) on the same Postgres, one request after the other,
// alternating. Metrics: ztn-req/s, plain-req/s and ztn/plain (the share of
// the plain path's rate that ztn keeps).
func BenchmarkPath(b *testing.B) {
	requireStores(b)
	app := startDevT(b, devConfig{Hostnames: []string{"appserver-1"}})

	// The plain chain: the same handlers and stores, plain HTTP between them.
	api, err := yelb.NewAppServer(app.votes, app.views, "appserver-plain")
	if err != nil {
		b.Fatal(err)
	}
	appSrv := httptest.NewServer(api)
	defer appSrv.Close()
	target, _ := url.Parse(appSrv.URL)
	proxy, err := yelb.NewAPIProxy(target, nil)
	if err != nil {
		b.Fatal(err)
	}
	ui, err := yelb.NewUI(proxy)
	if err != nil {
		b.Fatal(err)
	}
	uiSrv := httptest.NewServer(ui)
	defer uiSrv.Close()
	gwTarget, _ := url.Parse(uiSrv.URL)
	gwSrv := httptest.NewServer(httputil.NewSingleHostReverseProxy(gwTarget)) // the gateway
	defer gwSrv.Close()

	ztnBase := strings.TrimSuffix(app.URL, "/")
	for _, op := range []struct{ name, path string }{{"votes", "/api/ihop"}, {"getvotes", "/api/getvotes"}} {
		b.Run(op.name, func(b *testing.B) {
			client := &http.Client{Timeout: 10 * time.Second}
			do := func(base string) time.Duration {
				t0 := time.Now()
				resp, err := client.Get(base + op.path)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("GET %s%s: %d", base, op.path, resp.StatusCode)
				}
				return time.Since(t0)
			}
			do(ztnBase) // connections up
			do(gwSrv.URL)
			var zt, pt time.Duration
			for b.Loop() {
				zt += do(ztnBase)
				pt += do(gwSrv.URL)
			}
			zr, pr := float64(b.N)/zt.Seconds(), float64(b.N)/pt.Seconds()
			b.ReportMetric(zr, "ztn-req/s")
			b.ReportMetric(pr, "plain-req/s")
			b.ReportMetric(zr/pr, "ztn/plain")
		})
	}
}
