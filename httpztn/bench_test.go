package httpztn_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/internal/test/benchpair"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// benchIntentions lets web GET under an L7 intention whose deciding
// permission has a header condition, so every request is judged on its
// path, method and headers.
const benchIntentions = `[{"Kind":"service-intentions","Name":"api","Sources":[
  {"Name":"web","Permissions":[
     {"Action":"deny","HTTP":{"PathPrefix":"/admin"}},
     {"Action":"allow","HTTP":{"PathPrefix":"/","Methods":["GET"],"Header":[{"Name":"X-Tenant","Present":true}]}}]}]}]`

// BenchmarkPairedRequests reports HTTP/2 GETs per second (persistent
// connections) through httpztn and through net/http over plain crypto/tls
// mutual TLS (same certificates), and the ratio, for each stack
// (benchpair.Adapter) at concurrency 1 and 16. Both sides of a stack carry
// the same instrumentation and write the same per-request access record
// with the same logger, so the ratio charges ztn only for what it adds: the
// ztn connection, its client transport and the per-request authorization.
func BenchmarkPairedRequests(b *testing.B) { benchpair.Adapter(b, "reqs", benchPair) }

// benchPair returns one GET through plain TLS and one through ztn, both
// servers and clients logging with logger and instrumented with otelhttp
// when otel is set.
func benchPair(b *testing.B, logger *slog.Logger, otel bool) (raw, zt func() error) {
	m := meshtest.Dev(b, ztnet.WithLogger(logger))
	meshtest.Intentions(b, m, benchIntentions)
	// ztn: as httpztn.NewServer and NewClient set it up; without otel, the
	// Services' providers are no-op, so the constructors install none.
	var opts []ztnet.Option
	if !otel {
		opts = meshtest.NoTelemetry()
	}
	api, web := meshtest.Service(b, m, "api", opts...), meshtest.Service(b, m, "web", opts...)
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	serveHTTP(b, api, ok)
	zc := newClient(b, web)

	// Plain TLS: the same net/http, certificates, otelhttp and access record.
	roots := x509.NewCertPool()
	for _, r := range m.CA().Bundle().X509Authorities() {
		roots.AddCert(r)
	}
	_, _, apiCert := svidFiles(b, m.CA(), "api")
	_, _, webCert := svidFiles(b, m.CA(), "web")
	var h http.Handler = accessLog(logger, api.ID().String(), ok)
	if otel {
		h = otelhttp.NewHandler(h, "api",
			otelhttp.WithTracerProvider(ztnhook.Of(api).TracerProvider()), otelhttp.WithMeterProvider(ztnhook.Of(api).MeterProvider()))
	}
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{apiCert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots}
	srv.StartTLS()
	b.Cleanup(srv.Close)
	var rt http.RoundTripper = &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{webCert}, InsecureSkipVerify: true}}
	if otel {
		rt = otelhttp.NewTransport(rt,
			otelhttp.WithTracerProvider(ztnhook.Of(web).TracerProvider()), otelhttp.WithMeterProvider(ztnhook.Of(web).MeterProvider()))
	}
	rc := &http.Client{Transport: rt}
	b.Cleanup(rc.CloseIdleConnections)

	get := func(c *http.Client, url string) func() error {
		return func() error {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			req.Header.Set("X-Tenant", "blue")
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.Body.Close()
		}
	}
	return get(rc, srv.URL+"/"), get(zc, "http://api/")
}

// accessLog writes the access record httpztn writes, for the plain TLS
// server: the same attributes, at Debug, only when enabled.
func accessLog(l *slog.Logger, dest string, h http.Handler) http.Handler {
	destAttr := slog.String("destination", dest)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.Enabled(r.Context(), slog.LevelDebug) {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		var src string
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && len(r.TLS.PeerCertificates[0].URIs) > 0 {
			src = r.TLS.PeerCertificates[0].URIs[0].String()
		}
		l.LogAttrs(r.Context(), slog.LevelDebug, "tls request",
			slog.String("protocol", r.Proto),
			slog.String("source", src),
			destAttr,
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("decision", "allow"),
			slog.String("reason", "client certificate verified"),
			slog.Int("status", sw.status),
			slog.Int64("bytes_in", 0), // GETs without a body
			slog.Int64("bytes_out", sw.n),
			slog.Duration("duration", time.Since(start)))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// BenchmarkL7Decision measures one per-request authorization
// (Service.AuthorizeRequest) under an L7 intention with three permissions.
func BenchmarkL7Decision(b *testing.B) {
	m := meshtest.Dev(b)
	meshtest.Intentions(b, m, l7Intentions)
	api := meshtest.Service(b, m, "api")
	peer := ztn.ServiceID{TrustDomain: api.ID().TrustDomain, Namespace: "default", Partition: "default", Datacenter: "dc1", Name: "web"}
	req := &authz.HTTPRequest{Path: "/upload", Method: "POST", Header: http.Header{"X-Tenant": {"blue"}}}
	ctx := context.Background()
	for b.Loop() {
		if !ztnhook.Of(api).AuthorizeRequest(ctx, peer, req).Allowed {
			b.Fatal("denied")
		}
	}
}

// BenchmarkRequest reports the cost of one GET, one at a time, through
// plain TLS and through ztn in each stack: run it with -benchmem to compare
// allocations per request.
func BenchmarkRequest(b *testing.B) { benchpair.AdapterEach(b, benchPair) }
