package httpztn_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/test/testenv"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

const allowWebToAPI = `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"}]}]`

// whoami answers "<proto> <peer> <path>".
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id, _ := httpztn.Peer(r)
	fmt.Fprintf(w, "%s %s %s", r.Proto, id, r.URL.Path)
})

func TestHTTP2AndHTTP1(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	serveHTTP(t, api, whoami)
	for _, tc := range []struct {
		opts []httpztn.Option
		want string
	}{
		{nil, "HTTP/2.0 spiffe://ztn.test/ns/default/dc/dc1/svc/web /hello"},
		{[]httpztn.Option{httpztn.WithHTTP1()}, "HTTP/1.1 spiffe://ztn.test/ns/default/dc/dc1/svc/web /hello"},
	} {
		code, body := do(t, newClient(t, web, tc.opts...), "GET", "http://api/hello?q=1")
		if code != 200 || body != tc.want {
			t.Fatalf("got %d %q, want 200 %q", code, body, tc.want)
		}
	}
}

const l7Intentions = `[{"Kind":"service-intentions","Name":"api","Sources":[
  {"Name":"web","Permissions":[
     {"Action":"deny","HTTP":{"PathPrefix":"/admin"}},
     {"Action":"allow","HTTP":{"PathPrefix":"/","Methods":["GET"]}},
     {"Action":"allow","HTTP":{"PathExact":"/upload","Header":[{"Name":"X-Tenant","Exact":"blue"}]}}]},
  {"Name":"*","Action":"deny"}]}]`

func TestL7PerRequest(t *testing.T) {
	for _, defaultAllow := range []bool{false, true} {
		name := "default-deny"
		var opts []ztnet.DevOption
		if defaultAllow {
			name = "default-allow"
			opts = append(opts, ztnet.WithDevPolicyOptions(authz.WithDefaultAllow()))
		}
		t.Run(name, func(t *testing.T) {
			m := meshtest.Dev(t, opts...)
			meshtest.Intentions(t, m, l7Intentions)
			api, web, batch := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web"), meshtest.Service(t, m, "batch")
			serveHTTP(t, api, whoami)
			c := newClient(t, web)
			noMatch := 403
			if defaultAllow {
				noMatch = 200
			}
			for _, tc := range []struct {
				method, path string
				hdr          []string
				code         int
				body         string
			}{
				{"GET", "/users", nil, 200, "/users"},
				{"GET", "/admin/users", nil, 403, "httpztn: spiffe://ztn.test/ns/default/dc/dc1/svc/web denied: L7 intention web → api: permission 1 ("},
				{"GET", "/x/../admin/users", nil, 400, "dot segment"}, // refused before the check
				{"GET", "//admin", nil, 403, "permission 1"},
				{"POST", "/upload", []string{"X-Tenant", "blue"}, 200, "/upload"},
				{"POST", "/upload", []string{"x-tenant", "red"}, noMatch, ""},
				{"DELETE", "/users", nil, noMatch, ""},
			} {
				code, body := do(t, c, tc.method, "http://api"+tc.path, tc.hdr...)
				if code != tc.code || !strings.Contains(body, tc.body) {
					t.Errorf("%s %s %v: got %d %q, want %d containing %q", tc.method, tc.path, tc.hdr, code, body, tc.code, tc.body)
				}
				if code == 403 && tc.body == "" && !strings.Contains(body, "no permission matched (default deny)") {
					t.Errorf("%s %s: 403 body %q lacks the default-deny reason", tc.method, tc.path, body)
				}
			}
			// batch matches the L4 *→api deny: its request fails in the dial.
			_, err := newClient(t, batch).Get("http://api/users")
			if err == nil || !strings.Contains(err.Error(), "denied: intention * → api denies") {
				t.Fatalf("batch: err = %v", err)
			}
		})
	}
}

func TestL7OnlyIntentionPlainListenerDenies(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[
	  {"Name":"web","Permissions":[{"Action":"allow","HTTP":{"PathPrefix":"/"}}]}]}]`)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	serveHTTP(t, api, whoami)
	if code, body := do(t, newClient(t, web), "GET", "http://api/ok"); code != 200 {
		t.Fatalf("httpztn listener: %d %s", code, body)
	}
	plain, err := api.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	_, err = ztnhook.Of(web).DialAddress(context.Background(), "api", plain.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "L7 permissions only") {
		t.Fatalf("plain listener: err = %v", err)
	}
}

func TestRoundRobinAcrossInstances(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	var n1, n2 atomic.Int64
	serveHTTP(t, api, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n1.Add(1) }))
	serveHTTP(t, api, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n2.Add(1) }))
	c := newClient(t, web)
	for range 20 {
		if code, _ := do(t, c, "GET", "http://api/"); code != 200 {
			t.Fatal(code)
		}
	}
	if n1.Load() != 10 || n2.Load() != 10 {
		t.Fatalf("instances served %d and %d", n1.Load(), n2.Load())
	}
}

func TestRequestContextHonoured(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	serveHTTP(t, api, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://api/slow", nil)
	start := time.Now()
	_, err := newClient(t, web).Do(req)
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

// A server made by NewServer but serving a plain listener refuses every
// request with 403: it fails closed.
func TestNotZTNConnRefused(t *testing.T) {
	m := meshtest.Dev(t)
	api := meshtest.Service(t, m, "api")
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = httpztn.NewServer(api, whoami)
	srv.Start()
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestCurlAndOpenSSL(t *testing.T) {
	curlBin, opensslBin := testenv.Program(t, "curl", "curl"), testenv.Program(t, "openssl", "openssl")
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api := meshtest.Service(t, m, "api")
	addr := serveHTTP(t, api, whoami)
	url := "https://" + addr + "/curl"
	certFile, keyFile, _ := svidFiles(t, m.CA(), "web")

	curl := func(args ...string) (string, error) {
		base := []string{"-sS", "-k", "--max-time", "5", "-w", " %{http_version}"}
		out, err := exec.Command(curlBin, append(base, args...)...).CombinedOutput()
		return string(out), err
	}
	for _, v := range []struct{ flag, want string }{{"--http2", "HTTP/2.0 spiffe://ztn.test/ns/default/dc/dc1/svc/web /curl 2"}, {"--http1.1", "HTTP/1.1 spiffe://ztn.test/ns/default/dc/dc1/svc/web /curl 1.1"}} {
		out, err := curl(v.flag, "--cert", certFile, "--key", keyFile, url)
		if err != nil || out != v.want {
			t.Fatalf("curl %s with a mesh cert: %q, %v; want %q", v.flag, out, err, v.want)
		}
	}

	td, _ := spiffeid.TrustDomainFromString("ztn.test")
	other, err := certs.NewDevCA(td)
	if err != nil {
		t.Fatal(err)
	}
	fc, fk, _ := svidFiles(t, other, "web")
	if out, err := curl("--cert", fc, "--key", fk, url); err == nil || strings.Contains(out, "svc/web") {
		t.Fatalf("curl with a foreign CA's cert: %q, %v; want refused", out, err)
	}
	if out, err := curl(url); err == nil || strings.Contains(out, "svc/") {
		t.Fatalf("curl without a cert: %q, %v; want refused", out, err)
	}

	cmd := exec.Command(opensslBin, "s_client", "-connect", addr, "-tls1_3", "-alpn", "http/1.1", "-quiet")
	cmd.Stdin = strings.NewReader("GET /openssl HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
	out, _ := cmd.CombinedOutput()
	if strings.Contains(string(out), "HTTP/1.1 ") || !strings.Contains(strings.ToLower(string(out)), "alert") {
		t.Fatalf("openssl s_client without a cert was not refused with an alert:\n%s", out)
	}
}

func TestGateway(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[
	  {"Kind":"service-intentions","Name":"api","Sources":[{"Name":"gateway","Action":"allow"}]},
	  {"Kind":"service-intentions","Name":"beta","Sources":[{"Name":"gateway","Action":"allow"}]},
	  {"Kind":"service-intentions","Name":"admin","Sources":[{"Name":"gateway","Action":"deny"}]}]`)
	var logs logtest.Buffer
	gwLog := ztnet.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	api, beta, admin, gwSvc := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "beta"), meshtest.Service(t, m, "admin"), meshtest.Service(t, m, "gateway", gwLog)
	seen := make(chan *http.Request, 1)
	record := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ := httpztn.Peer(r)
			select {
			case seen <- r:
			default:
			}
			fmt.Fprintf(w, "%s from %s", name, id)
		})
	}
	serveHTTP(t, api, record("api"))
	serveHTTP(t, beta, record("beta"))
	serveHTTP(t, admin, record("admin"))
	gw, err := httpztn.NewGateway(gwSvc,
		httpztn.Route{Host: "shop.example", PathPrefix: "/api", Headers: map[string]string{"X-Beta": "1"}, Service: "beta"},
		httpztn.Route{Host: "shop.example", PathPrefix: "/api", Methods: []string{"GET", "POST"}, Service: "api"},
		httpztn.Route{Host: "*.admin.example", Service: "admin"},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	pub := httptest.NewServer(gw)
	defer pub.Close()
	pc := pub.Client()
	defer pc.CloseIdleConnections()

	send := func(method, host, path string, hdr ...string) (int, string) {
		req, _ := http.NewRequestWithContext(context.Background(), method, pub.URL+path, nil)
		req.Host = host
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := pc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = fmt.Fprint(&b, readAll(resp))
		return resp.StatusCode, b.String()
	}

	gwID := "spiffe://ztn.test/ns/default/dc/dc1/svc/gateway"
	code, body := send("GET", "shop.example", "/api/items", "X-Forwarded-For", "6.6.6.6", "Connection", "X-Secret", "X-Secret", "s3cret")
	if code != 200 || body != "api from "+gwID {
		t.Fatalf("GET shop.example/api/items: %d %q", code, body)
	}
	r := <-seen
	if got := r.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want 127.0.0.1 (the client's spoofed value dropped)", got)
	}
	if r.Header.Get("X-Forwarded-Proto") != "http" || r.Header.Get("X-Forwarded-Host") != "shop.example" || r.Host != "api" {
		t.Errorf("forwarded headers %v, Host %q", r.Header, r.Host)
	}
	if r.Header.Get("X-Secret") != "" {
		t.Errorf("hop-by-hop header X-Secret was forwarded")
	}
	if code, body := send("GET", "shop.example", "/api/items", "X-Beta", "1"); code != 200 || !strings.HasPrefix(body, "beta from") {
		t.Errorf("header route: %d %q", code, body)
	}
	<-seen
	if code, _ := send("DELETE", "shop.example", "/api/items"); code != 404 {
		t.Errorf("method not routed: %d", code)
	}
	if code, _ := send("GET", "shop.example", "/apix"); code != 404 {
		t.Errorf("prefix at segment boundary: %d", code)
	}
	if code, _ := send("GET", "other.example", "/api/items"); code != 404 {
		t.Errorf("host not routed: %d", code)
	}
	if code, body := send("GET", "eu.admin.example", "/"); code != 403 || !strings.HasPrefix(body, "forbidden (request id ") {
		t.Errorf("mesh refusal: %d %q", code, body)
	}

	// One access record per public request: Debug when a service answered,
	// Warn with the reason when the gateway did.
	var recs []map[string]any
	poll.Eventually(t, 5*time.Second, func() error {
		if recs = logs.Records(t, "ztn gateway request"); len(recs) != 6 {
			return fmt.Errorf("%d gateway access records, want 6:\n%s", len(recs), logs.String())
		}
		return nil
	})
	for i, want := range []struct {
		level, method, host, path, service, reason string
		status                                     float64
	}{
		{"DEBUG", "GET", "shop.example", "/api/items", "api", "", 200},
		{"DEBUG", "GET", "shop.example", "/api/items", "beta", "", 200},
		{"WARN", "DELETE", "shop.example", "/api/items", "", "no route", 404},
		{"WARN", "GET", "shop.example", "/apix", "", "no route", 404},
		{"WARN", "GET", "other.example", "/api/items", "", "no route", 404},
		{"WARN", "GET", "eu.admin.example", "/", "admin", "intention gateway → admin denies", 403},
	} {
		r := recs[i]
		if r["level"] != want.level || r["method"] != want.method || r["host"] != want.host || r["path"] != want.path ||
			r["service"] != want.service || !strings.Contains(r["reason"].(string), want.reason) || r["status"] != want.status {
			t.Errorf("record %d: %v, want %+v", i, r, want)
		}
		if b, _ := r["bytes_out"].(float64); b <= 0 {
			t.Errorf("record %d: bytes_out %v", i, r["bytes_out"])
		}
		if !strings.HasPrefix(r["client"].(string), "127.0.0.1:") {
			t.Errorf("record %d: client %v", i, r["client"])
		}
	}
}

func readAll(resp *http.Response) string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

var _ = net.Dial
