package httpztn_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// rawRequest sends one HTTP/1.1 request over c with target written as it is
// (no client-side cleaning or escaping) and returns the status and body.
func rawRequest(t testing.TB, c net.Conn, method, host, target string, hdr ...string) (int, string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", hdr[i], hdr[i+1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// rawGet sends GET target to the plain HTTP server at addr on a new
// connection.
func rawGet(t testing.TB, addr, host, target string, hdr ...string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return rawRequest(t, c, "GET", host, target, hdr...)
}

// pathRecorder answers "saw <path>" and keeps every path it served.
type pathRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (p *pathRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.seen = append(p.seen, r.URL.Path)
	p.mu.Unlock()
	fmt.Fprintf(w, "saw %s", r.URL.Path)
}

func (p *pathRecorder) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.seen
	p.seen = nil
	return s
}

// Every hostile spelling of /admin, sent through the real gateway to a real
// httpztn back end, is refused (400) or denied (403): it is never routed
// outside the route's prefix, and never served as /admin. The gateway, the
// back end's authorization and its handler see one path.
func TestGatewayPathEscape(t *testing.T) {
	m := meshtest.Dev(t)
	api, gwSvc := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "gateway")
	rec := &pathRecorder{}
	serveHTTP(t, api, rec)

	hostile := []string{
		"/api/../admin", "/api/%2e%2e/admin", "/api/..%2fadmin", "/api/..%2Fadmin", "/api/%2E%2E/admin",
		"/api/.%2e/admin", "/api/%2e./admin", "/api/..;/admin", "/api/..;x=1/admin", "/api/%2e%2e;/admin",
		"/api//../admin", "/api/./../admin", "/api/../admin/", `/api/..\admin`, "/api/..%5cadmin",
		"/api/..%5Cadmin", "/api/%252e%252e/admin", "/api/%00/../admin", "/api/%00", "/api%2f..%2fadmin",
		"/api/x/../../admin", "/api/%2e%2e%2fadmin",
	}
	for _, tc := range []struct {
		name   string
		policy string
		route  httpztn.Route
		extra  []string // spellings of /admin this route set would otherwise serve
		served map[string]string
	}{{
		name:   "prefix route, the service allows all",
		policy: `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"gateway","Action":"allow"}]}]`,
		route:  httpztn.Route{Host: "shop.example.com", PathPrefix: "/api", Service: "api"},
		served: map[string]string{ // target → the path the handler sees
			"/api/items": "/api/items", "/api//items": "/api/items", "/api/%69tems": "/api/items",
			"/api/items/": "/api/items/", "/api": "/api", "/%61pi/items": "/api/items",
		},
	}, {
		name: "catch-all route, L7 deny on /admin",
		policy: `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"gateway","Permissions":[
		  {"Action":"deny","HTTP":{"PathPrefix":"/admin"}},
		  {"Action":"allow","HTTP":{"PathPrefix":"/"}}]}]}]`,
		route:  httpztn.Route{Host: "shop.example.com", Service: "api"},
		extra:  []string{"/admin", "//admin", "/%61dmin", "/%61%64%6D%69%6E/x", "/./admin", "/x/../admin", "/admin/../admin"},
		served: map[string]string{"/x": "/x", "//x//y": "/x/y", "/adm": "/adm"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			meshtest.Intentions(t, m, tc.policy)
			gw, err := httpztn.NewGateway(gwSvc, tc.route)
			if err != nil {
				t.Fatal(err)
			}
			defer gw.Close()
			pub := httptest.NewServer(gw)
			defer pub.Close()
			addr := pub.Listener.Addr().String()
			for _, target := range append(append([]string(nil), hostile...), tc.extra...) {
				code, body := rawGet(t, addr, "shop.example.com", target)
				if code != http.StatusBadRequest && code != http.StatusForbidden && code != http.StatusNotFound {
					t.Errorf("GET %s: %d %q, want 400, 403 or 404", target, code, body)
				}
				for _, p := range rec.take() {
					if strings.HasPrefix(p, "/admin") || tc.route.PathPrefix != "" && !strings.HasPrefix(p, tc.route.PathPrefix) {
						t.Errorf("GET %s: the back end served %s", target, p)
					}
				}
			}
			for target, want := range tc.served {
				code, body := rawGet(t, addr, "shop.example.com", target)
				if code != 200 || body != "saw "+want {
					t.Errorf("GET %s: %d %q, want 200 %q", target, code, body, "saw "+want)
				}
				rec.take()
			}
		})
	}
}

// The back end refuses what the gateway refuses, for mesh callers that
// send hostile paths directly: 400 for a path the policy refuses, and the
// L7 rule judged on the cleaned path the handler sees.
func TestAuthorizeRefusesUncleanPaths(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, l7Intentions)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	rec := &pathRecorder{}
	addr := serveHTTP(t, api, rec)
	c, err := ztnhook.Of(web).DialAddress(context.Background(), "api", addr, "http/1.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		target string
		code   int
		body   string
	}{
		{"/x/../admin", 400, "dot segment"},
		{"/x/%2e%2e/admin", 400, "dot segment"},
		{"/x/..%2fadmin", 400, "encoded slash"},
		{`/x/..\admin`, 400, "backslash"},
		{"/x/%00", 400, "control character"},
		{"/x/%252e%252e/admin", 400, "double percent-encoding"},
		{"//admin", 403, "permission 1"},
		{"/%61dmin", 403, "permission 1"},
		{"/users//x", 200, "saw /users/x"},
		{"/%75sers", 200, "saw /users"},
	} {
		code, body := rawRequest(t, c, "GET", "api", tc.target)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s: %d %q, want %d containing %q", tc.target, code, body, tc.code, tc.body)
		}
	}
	for _, p := range rec.take() {
		if strings.HasPrefix(p, "/admin") {
			t.Errorf("the handler served %s", p)
		}
	}
}

// CONNECT asks for a tunnel, and its path is not sent on (a CONNECT over
// HTTP/2 has none): routed by its path, it would reach the service outside
// the route's prefix. The gateway refuses it (405, the reason in its
// record); the back end sees nothing.
func TestGatewayRefusesConnect(t *testing.T) {
	m := meshtest.Dev(t)
	logger, lines := logtest.Capture(t)
	api, gwSvc := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "gateway", ztnet.WithLogger(logger))
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"gateway","Action":"allow"}]}]`)
	rec := &pathRecorder{}
	serveHTTP(t, api, rec)
	gw, err := httpztn.NewGateway(gwSvc, httpztn.Route{PathPrefix: "/api", Service: "api"})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	pub := httptest.NewServer(gw)
	defer pub.Close()
	c, err := net.Dial("tcp", pub.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	code, body := rawRequest(t, c, http.MethodConnect, "shop.example.com", "/api/items")
	if code != http.StatusMethodNotAllowed || !strings.HasPrefix(body, "method not allowed (request id ") {
		t.Errorf("CONNECT /api/items: %d %q; want 405", code, body)
	}
	if seen := rec.take(); len(seen) != 0 {
		t.Errorf("CONNECT /api/items: the back end served %q", seen)
	}
	if logtest.Count(lines(), "ztn gateway request", "method=CONNECT", "status=405", "CONNECT") == 0 {
		t.Errorf("no record of the refused CONNECT:\n%s", strings.Join(lines(), "\n"))
	}
	// The connection still serves what the route allows.
	if code, body := rawRequest(t, c, http.MethodGet, "shop.example.com", "/api/items"); code != 200 || body != "saw /api/items" {
		t.Errorf("GET /api/items after a CONNECT: %d %q", code, body)
	}
}
