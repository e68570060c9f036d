package yelb_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/examples/yelb/internal/yelb"
)

var client = &http.Client{Timeout: 20 * time.Second}

type answer struct {
	code int
	body string
	hdr  http.Header
}

// do sends method base+path; path may start with "//".
func do(t *testing.T, method, base, path string) answer {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return answer{resp.StatusCode, string(b), resp.Header}
}

// expect checks the status, the body and the one CORS header of an API
// answer.
func expect(t *testing.T, base, path string, code int, body string) answer {
	t.Helper()
	a := do(t, http.MethodGet, base, path)
	if a.code != code || (body != "" && a.body != body) {
		t.Errorf("GET %s = %d %q; want %d %q", path, a.code, a.body, code, body)
	}
	if got := a.hdr.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "*" {
		t.Errorf("GET %s: Access-Control-Allow-Origin %q; want exactly one *", path, got)
	}
	return a
}

func votesJSON(outback, bucadibeppo, ihop, chipotle int) string {
	return fmt.Sprintf(`[{"name":"outback","value":%d},{"name":"bucadibeppo","value":%d},{"name":"ihop","value":%d},{"name":"chipotle","value":%d}]`,
		outback, bucadibeppo, ihop, chipotle)
}

// conformance checks every row of the spec's API table against base, an
// app server (or a UI in front of one) on a fresh store, answering as
// hostname.
func conformance(t *testing.T, base, hostname string) {
	t.Helper()
	// A fresh database: four zeros, in this order.
	a := expect(t, base, "/api/getvotes", 200, votesJSON(0, 0, 0, 0))
	if ct := a.hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("getvotes Content-Type %q", ct)
	}
	// Page views: +1 per pageviews or getstats, nothing else counts.
	expect(t, base, "/api/pageviews", 200, "1")
	expect(t, base, "/api/getstats", 200, `{"hostname":"`+hostname+`","pageviews":2}`)
	expect(t, base, "/api/pageviews", 200, "3")
	a = expect(t, base, "/api/hostname", 200, hostname)
	if ct := a.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("hostname Content-Type %q", ct)
	}
	// A vote answers the new count; getvotes shows it.
	expect(t, base, "/api/ihop", 200, "1")
	expect(t, base, "/api/getvotes", 200, votesJSON(0, 0, 1, 0))
	expect(t, base, "/api/ihop", 200, "2")
	expect(t, base, "/api/chipotle", 200, "1")
	expect(t, base, "/api/outback", 200, "1")
	expect(t, base, "/api/bucadibeppo", 200, "1")
	expect(t, base, "/api/getvotes", 200, votesJSON(1, 1, 2, 1))
	expect(t, base, "/api/pageviews", 200, "4") // votes, getvotes, hostname did not count

	// //api/... (the original page asks for it) for every endpoint.
	expect(t, base, "//api/getvotes", 200, votesJSON(1, 1, 2, 1))
	expect(t, base, "//api/outback", 200, "2")
	expect(t, base, "///api/bucadibeppo", 200, "2")
	expect(t, base, "//api/ihop", 200, "3")
	expect(t, base, "//api/chipotle", 200, "2")
	expect(t, base, "//api/pageviews", 200, "5")
	expect(t, base, "//api/getstats", 200, `{"hostname":"`+hostname+`","pageviews":6}`)
	expect(t, base, "//api/hostname", 200, hostname)

	// An unknown /api/<x> is an error, never a vote; so are other methods.
	for _, p := range []string{"/api/pizzahut", "/api/IHOP", "/api/ihop/", "/api/ihop/1", "/api/getvotes/",
		"/api/", "/api", "/api//ihop", "/api/ihop%2F"} {
		a := expect(t, base, p, 404, "")
		if strings.Contains(a.body, "[") {
			t.Errorf("GET %s: body %q", p, a.body)
		}
	}
	if a := do(t, http.MethodGet, base, "/apiihop"); a.code != 404 {
		t.Errorf("GET /apiihop = %d; want 404", a.code)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		a := do(t, m, base, "/api/ihop")
		if a.code != http.StatusMethodNotAllowed || a.hdr.Get("Allow") != "GET, OPTIONS" {
			t.Errorf("%s /api/ihop = %d (Allow %q); want 405", m, a.code, a.hdr.Get("Allow"))
		}
	}
	a = do(t, http.MethodOptions, base, "/api/getvotes")
	if a.code != 200 || a.hdr.Get("Access-Control-Allow-Origin") != "*" || a.body != "" {
		t.Errorf("OPTIONS /api/getvotes = %d %q %v", a.code, a.body, a.hdr)
	}
	expect(t, base, "/api/getvotes", 200, votesJSON(2, 2, 3, 2))
	expect(t, base, "/api/pageviews", 200, "7")
}

func newMemoryApp(t *testing.T, hostname string) *yelb.AppServer {
	t.Helper()
	store := yelb.NewMemory()
	app, err := yelb.NewAppServer(store, store, hostname)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func newUI(t *testing.T, api http.Handler) http.Handler {
	t.Helper()
	ui, err := yelb.NewUI(api)
	if err != nil {
		t.Fatal(err)
	}
	return ui
}

// The API table against the in-memory store, straight, through the UI in
// the same process, and through the UI and its proxy.
func TestAPIMemory(t *testing.T) {
	t.Run("appserver", func(t *testing.T) {
		srv := httptest.NewServer(newMemoryApp(t, "appserver-1"))
		defer srv.Close()
		conformance(t, srv.URL, "appserver-1")
	})
	t.Run("ui", func(t *testing.T) {
		srv := httptest.NewServer(newUI(t, newMemoryApp(t, "appserver-2")))
		defer srv.Close()
		conformance(t, srv.URL, "appserver-2")
	})
	t.Run("ui-proxy", func(t *testing.T) {
		app := httptest.NewServer(newMemoryApp(t, "appserver-3"))
		defer app.Close()
		target, _ := url.Parse(app.URL)
		proxy, err := yelb.NewAPIProxy(target, nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(newUI(t, proxy))
		defer srv.Close()
		conformance(t, srv.URL, "appserver-3")
	})
}

func TestAPIProxyDown(t *testing.T) {
	app := httptest.NewServer(newMemoryApp(t, "h"))
	target, _ := url.Parse(app.URL)
	app.Close()
	proxy, err := yelb.NewAPIProxy(target, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newUI(t, proxy))
	defer srv.Close()
	expect(t, srv.URL, "/api/getvotes", http.StatusBadGateway, "app server unavailable")
	// The page itself does not need the app server.
	if a := do(t, http.MethodGet, srv.URL, "/"); a.code != 200 {
		t.Errorf("GET / = %d with the app server down", a.code)
	}
}

func TestNewAppServerHostname(t *testing.T) {
	store := yelb.NewMemory()
	for _, bad := range []string{"two words", "tab\there", "new\nline"} {
		if _, err := yelb.NewAppServer(store, store, bad); err == nil {
			t.Errorf("hostname %q accepted", bad)
		}
	}
	app, err := yelb.NewAppServer(store, store, "")
	if err != nil || app.Hostname() == "" {
		t.Fatalf("default hostname: %q, %v", app.Hostname(), err)
	}
	if _, err := yelb.NewAppServer(nil, store, "h"); err == nil {
		t.Error("nil vote store accepted")
	}
}

// The page: the original's texts, four Vote buttons, and every file it
// loads served by the program.
func TestUIPage(t *testing.T) {
	srv := httptest.NewServer(newUI(t, newMemoryApp(t, "h")))
	defer srv.Close()
	a := do(t, http.MethodGet, srv.URL, "/")
	if a.code != 200 || !strings.HasPrefix(a.hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", a.code, a.hdr.Get("Content-Type"))
	}
	page := a.body
	if m := regexp.MustCompile(`<title>(.*?)</title>`).FindAllStringSubmatch(page, -1); len(m) != 1 || m[0][1] != "Yelb" {
		t.Errorf("titles %q; want exactly one, Yelb", m)
	}
	if n := strings.Count(page, ">Vote</button>"); n != 4 {
		t.Errorf("%d Vote buttons; want 4", n)
	}
	for _, s := range []string{
		"Welcome to Yelb, the only hub for healthy food recommendations!",
		"IHOP", "<b>Pancakes</b>", "Chipotle", "<b>Burritos</b>", "Outback", "<b>Blooming onion</b>",
		"Buca di Beppo", "<b>Lasagne</b>",
		`data-restaurant="ihop"`, `data-restaurant="chipotle"`, `data-restaurant="outback"`, `data-restaurant="bucadibeppo"`,
		"Number of page views so far:", "App Server:", `id="pie"`,
	} {
		if !strings.Contains(page, s) {
			t.Errorf("the page lacks %q", s)
		}
	}
	if csp := a.hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	// Everything the page loads is local, and served.
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	loaded := 0
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://") {
			if !strings.Contains(page, `href="`+ref+`" target="_blank"`) {
				t.Errorf("the page loads %s from elsewhere", ref)
			}
			continue // a link the user may follow, not a load
		}
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		loaded++
		r := do(t, http.MethodGet, srv.URL, "/"+ref)
		if r.code != 200 || r.body == "" {
			t.Errorf("GET /%s = %d", ref, r.code)
		}
		want := map[string]string{"yelb.js": "text/javascript", "yelb.css": "text/css"}[ref]
		if ct := r.hdr.Get("Content-Type"); want == "" || !strings.HasPrefix(ct, want) {
			t.Errorf("GET /%s: Content-Type %q", ref, ct)
		}
	}
	if loaded != 2 {
		t.Errorf("the page loads %d local files; want 2 (yelb.js, yelb.css)", loaded)
	}
	js := do(t, http.MethodGet, srv.URL, "/yelb.js").body
	for _, s := range []string{`get("getvotes")`, `get("getstats")`, `"/api/"`} {
		if !strings.Contains(js, s) {
			t.Errorf("yelb.js lacks %s", s)
		}
	}
	for _, p := range []string{"/index.html"} {
		if r := do(t, http.MethodGet, srv.URL, p); r.code != 200 || r.body != page {
			t.Errorf("GET %s = %d", p, r.code)
		}
	}
	for _, p := range []string{"/nope", "/ui/index.html", "/yelb.js/x", "/.."} {
		if r := do(t, http.MethodGet, srv.URL, p); r.code != 404 {
			t.Errorf("GET %s = %d; want 404", p, r.code)
		}
	}
	if r := do(t, http.MethodPost, srv.URL, "/"); r.code != 405 {
		t.Errorf("POST / = %d; want 405", r.code)
	}
}
