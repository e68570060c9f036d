package httpztn_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/ztnet"
)

// The Transport follows the resolver request by request: once an instance
// is deregistered (its listener closed), no request goes to it, not even
// one with a body that could not be retried elsewhere; an instance that
// appears gets requests at once.
func TestTransportFollowsResolver(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	var n1, n2 atomic.Int64
	count := func(n *atomic.Int64) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			n.Add(1)
		})
	}
	serveHTTP(t, api, count(&n1))
	l, err := httpztn.Listen(context.Background(), api, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpztn.NewServer(api, count(&n2))
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	defer func() { _ = srv.Close(); <-done }()

	c := newClient(t, web)
	post := func() int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://api/", strings.NewReader("body"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 10 {
		if code := post(); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	if n1.Load() != 5 || n2.Load() != 5 {
		t.Fatalf("instances served %d and %d of 10", n1.Load(), n2.Load())
	}

	_ = srv.Close() // deregisters the second instance, then closes its connections
	<-done
	for range 10 {
		if code := post(); code != 200 {
			t.Fatalf("after the second instance left: status %d", code)
		}
	}
	if n1.Load() != 15 {
		t.Fatalf("the remaining instance served %d of the last 10", n1.Load()-5)
	}

	var n3 atomic.Int64
	serveHTTP(t, api, count(&n3))
	for range 4 {
		post()
	}
	if n3.Load() != 2 {
		t.Fatalf("the new instance served %d of 4", n3.Load())
	}
}

// A redirect to another service is refused by default: following it would
// send the caller's identity (and its request) where the caller did not
// ask. A redirect within the service is followed; so, with
// WithCrossServiceRedirects, is one to another service. A redirect to an
// outside URL is refused either way (it is no ztn service).
func TestCrossServiceRedirectRefused(t *testing.T) {
	var logs logtest.Buffer
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"}]},
	  {"Kind":"service-intentions","Name":"admin","Sources":[{"Name":"web","Action":"allow"}]}]`)
	api, admin := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "admin")
	web := meshtest.Service(t, m, "web", ztnet.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	mux := http.NewServeMux()
	mux.Handle("/to-self", http.RedirectHandler("/ok", http.StatusFound))
	mux.Handle("/to-self-abs", http.RedirectHandler("http://api/ok", http.StatusFound))
	mux.Handle("/to-admin", http.RedirectHandler("http://admin/secret", http.StatusFound))
	mux.Handle("/to-outside", http.RedirectHandler("https://evil.example.com/x", http.StatusTemporaryRedirect))
	mux.Handle("/to-ftp", http.RedirectHandler("ftp://api/x", http.StatusFound))
	mux.Handle("/ok", whoami)
	serveHTTP(t, api, mux)
	var adminHits atomic.Int64
	serveHTTP(t, admin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		adminHits.Add(1)
		_, _ = io.WriteString(w, "admin secret")
	}))

	get := func(c *http.Client, path string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://api"+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), nil
	}
	plain := &http.Client{Transport: httpztn.NewTransport(web)} // the Transport refuses, whatever the client
	t.Cleanup(plain.CloseIdleConnections)
	for _, c := range []*http.Client{newClient(t, web), plain} {
		for _, path := range []string{"/to-self", "/to-self-abs"} {
			if body, err := get(c, path); err != nil || !strings.HasSuffix(body, "/ok") {
				t.Errorf("%s: %q, %v; want followed to /ok", path, body, err)
			}
		}
		for _, tc := range []struct{ path, want string }{
			{"/to-admin", `redirect from service "api" to service "admin" refused`},
			{"/to-outside", `redirect from service "api" to service "evil.example.com" refused`},
			{"/to-ftp", `redirect to scheme "ftp" refused`},
		} {
			if body, err := get(c, tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %q, %v; want an error containing %q", tc.path, body, err, tc.want)
			}
		}
	}
	if n := adminHits.Load(); n != 0 {
		t.Fatalf("admin served %d requests", n)
	}
	if recs := logs.Records(t, "ztn redirect refused"); len(recs) != 6 || recs[0]["level"] != "WARN" || recs[0]["to"] != "admin" {
		t.Errorf("refusal records: %v", recs)
	}

	allow := newClient(t, web, httpztn.WithCrossServiceRedirects())
	if body, err := get(allow, "/to-admin"); err != nil || body != "admin secret" {
		t.Errorf("/to-admin with WithCrossServiceRedirects: %q, %v", body, err)
	}
	if _, err := get(allow, "/to-ftp"); err == nil {
		t.Errorf("/to-ftp with WithCrossServiceRedirects followed")
	}
}

// A Transport used as a zero value fails with an error saying to use
// NewTransport, instead of panicking.
func TestZeroTransport(t *testing.T) {
	var tr httpztn.Transport
	tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://api/", strings.NewReader("x"))
	resp, err := tr.RoundTrip(req)
	if resp != nil || err == nil || err.Error() != "httpztn: Transport not created with NewTransport" {
		t.Fatalf("RoundTrip: %v, %v", resp, err)
	}
	if _, err := (&http.Client{Transport: &tr}).Get("http://api/"); err == nil || !strings.Contains(err.Error(), "NewTransport") {
		t.Fatalf("Get: %v", err)
	}
}

// CloseIdleConnections on the client NewClient returns reaches the
// Transport under otelhttp's: once called, the server's Shutdown does not
// wait for the client's idle HTTP/2 connection.
func TestClientCloseIdleConnectionsLetsShutdownReturn(t *testing.T) {
	for _, opts := range [][]ztnet.Option{nil, meshtest.NoTelemetry()} {
		m := meshtest.Dev(t)
		meshtest.Intentions(t, m, allowWebToAPI)
		api, web := meshtest.Service(t, m, "api", opts...), meshtest.Service(t, m, "web", opts...)
		l, err := httpztn.Listen(context.Background(), api, "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := httpztn.NewServer(api, whoami)
		done := make(chan error, 1)
		go func() { done <- srv.Serve(l) }()
		c := httpztn.NewClient(web)
		for _, o := range []httpztn.Option{nil, httpztn.WithHTTP1()} {
			if o != nil {
				c = httpztn.NewClient(web, o)
			}
			if code, body := do(t, c, "GET", "http://api/x"); code != 200 {
				t.Fatalf("GET: %d %s", code, body)
			}
			c.CloseIdleConnections()
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(ctx)
		cancel()
		if d := time.Since(start); err != nil || d > 300*time.Millisecond {
			t.Errorf("telemetry=%v: Shutdown took %v (%v) after CloseIdleConnections", opts == nil, d, err)
		}
		<-done
	}
}
