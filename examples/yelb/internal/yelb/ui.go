package yelb

import (
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
)

//go:embed ui
var uiFiles embed.FS

// uiFS is the page's files: index.html, yelb.js, yelb.css.
var uiFS, _ = fs.Sub(uiFiles, "ui")

// The page loads only what the program serves (no CDN); the policy says so
// to the browser too.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// UI is yelb-ui: it serves the page (the original Angular app's behaviour
// in plain HTML and JavaScript: four cards with a Vote button, a pie chart
// of the votes, the page views and the app server's host name) and hands
// /api/... to the app server, as the original's nginx does. Paths that start
// with several slashes (the page asks for //api/...) are the same as with
// one; a path with an encoded slash ("/api%2Fihop") is not found, never
// forwarded decoded.
type UI struct {
	api    http.Handler
	logger *slog.Logger
}

// NewUI returns the UI; api answers /api/... (an [AppServer] in the same
// process, or the proxy of [NewAPIProxy]). It receives the path with one
// leading slash.
func NewUI(api http.Handler, opts ...Option) (*UI, error) {
	if api == nil {
		return nil, errors.New("yelb: ui: an API handler is required")
	}
	cfg := newConfig(opts)
	return &UI{api: api, logger: cfg.logger}, nil
}

// ServeHTTP implements [http.Handler].
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimLeft(r.URL.Path, "/")
	if encodedSlash(r.URL) {
		// Decoded, "/api%2Fihop" would be forwarded as /api/ihop; the
		// app server's answer to what it is, an unknown path.
		if p == "api" || strings.HasPrefix(p, "api/") {
			w.Header().Set("Access-Control-Allow-Origin", "*")
		}
		writeText(w, http.StatusNotFound, "not found")
		return
	}
	if p == "api" || strings.HasPrefix(p, "api/") {
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = "/"+p, ""
		u.api.ServeHTTP(w, r2)
		return
	}
	var name string
	switch p {
	case "", "index.html":
		name = "index.html"
	case "yelb.js", "yelb.css":
		name = p
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeText(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	if name == "index.html" {
		// ServeFileFS would redirect /index.html to ./; serve it as is.
		b, err := fs.ReadFile(uiFS, name)
		if err != nil {
			u.logger.Error("yelb: ui: read the page", "err", err)
			writeText(w, http.StatusInternalServerError, "internal error")
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(b)
		return
	}
	http.ServeFileFS(w, r, uiFS, name)
}

// NewAPIProxy returns the handler that forwards /api/... to the app server
// at target (e.g. http://yelb-appserver) through transport (nil:
// http.DefaultTransport), as the original's nginx does with proxy_pass. An
// app server that cannot be reached is answered 502 "app server
// unavailable", with the Access-Control-Allow-Origin header the app
// server would have sent.
func NewAPIProxy(target *url.URL, transport http.RoundTripper, opts ...Option) (http.Handler, error) {
	if target == nil || target.Scheme == "" || target.Host == "" {
		return nil, errors.New("yelb: api proxy: an absolute target URL is required")
	}
	cfg := newConfig(opts)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: transport,
		ErrorLog:  slog.NewLogLogger(cfg.logger.Handler(), slog.LevelError),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			cfg.logger.Error("yelb: api proxy: app server unavailable", "path", r.URL.Path, "err", err)
			w.Header().Set("Access-Control-Allow-Origin", "*")
			writeText(w, http.StatusBadGateway, "app server unavailable")
		},
	}, nil
}

// encodedSlash reports whether u's path, as sent, has an encoded slash
// ("%2F", "%2f"): a character of a segment, which a decoded path would turn
// into a separator.
func encodedSlash(u *url.URL) bool {
	return strings.Contains(strings.ToLower(u.RawPath), "%2f")
}
