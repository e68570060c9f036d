package yelb_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/ztnlabs/ztn/examples/yelb/internal/yelb"
	"github.com/ztnlabs/ztn/examples/yelb/internal/yelbtest"
)

// The API's checks are shared with the command's tests (package yelbtest).
var (
	do        = yelbtest.Do
	expect    = yelbtest.Expect
	votesJSON = yelbtest.VotesJSON
)

// conformance checks every row of the API table, and the other methods.
func conformance(t *testing.T, base, hostname string) {
	t.Helper()
	yelbtest.Conformance(t, base, hostname)
	yelbtest.Methods(t, base)
	yelbtest.OddPaths(t, base)
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

func newUI(t testing.TB, api http.Handler) http.Handler {
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
	if a := do(t, http.MethodGet, srv.URL, "/"); a.Code != 200 {
		t.Errorf("GET / = %d with the app server down", a.Code)
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
	if a.Code != 200 || !strings.HasPrefix(a.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", a.Code, a.Header.Get("Content-Type"))
	}
	page := a.Body
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
	if csp := a.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
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
		if r.Code != 200 || r.Body == "" {
			t.Errorf("GET /%s = %d", ref, r.Code)
		}
		want := map[string]string{"yelb.js": "text/javascript", "yelb.css": "text/css"}[ref]
		if ct := r.Header.Get("Content-Type"); want == "" || !strings.HasPrefix(ct, want) {
			t.Errorf("GET /%s: Content-Type %q", ref, ct)
		}
	}
	if loaded != 2 {
		t.Errorf("the page loads %d local files; want 2 (yelb.js, yelb.css)", loaded)
	}
	js := do(t, http.MethodGet, srv.URL, "/yelb.js").Body
	for _, s := range []string{`get("getvotes")`, `get("getstats")`, `"/api/"`} {
		if !strings.Contains(js, s) {
			t.Errorf("yelb.js lacks %s", s)
		}
	}
	for _, p := range []string{"/index.html"} {
		if r := do(t, http.MethodGet, srv.URL, p); r.Code != 200 || r.Body != page {
			t.Errorf("GET %s = %d", p, r.Code)
		}
	}
	for _, p := range []string{"/nope", "/ui/index.html", "/yelb.js/x", "/.."} {
		if r := do(t, http.MethodGet, srv.URL, p); r.Code != 404 {
			t.Errorf("GET %s = %d; want 404", p, r.Code)
		}
	}
	if r := do(t, http.MethodPost, srv.URL, "/"); r.Code != 405 {
		t.Errorf("POST / = %d; want 405", r.Code)
	}
}
