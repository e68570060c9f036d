package httpztn

import (
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/ztnet"
)

// Authorize returns middleware that authorizes every request against svc's
// L7 intentions (path without the query string, method, headers) before h
// sees it. A refused request gets 403 Forbidden with the reason in a
// text/plain body ("httpztn: <source> denied: <reason>"); a request that did
// not come over a ztn connection gets 403 too. The path is normalized
// first (dot segments resolved, repeated slashes merged), and h sees the
// normalized path, so what is authorized is what is served. Each request
// gets one access-log record on svc's logger.
func Authorize(svc *ztnet.Service, h http.Handler) http.Handler {
	dest := svc.ID().String()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		zc := connOf(r)
		if zc == nil {
			http.Error(w, "httpztn: the request did not come over a ztn connection", http.StatusForbidden)
			logRequest(svc, r, "", dest, authz.Decision{}, http.StatusForbidden, start)
			return
		}
		if p := cleanPath(r.URL.Path); p != r.URL.Path {
			r2 := *r
			u := *r.URL
			u.Path, u.RawPath = p, ""
			r2.URL = &u
			r = &r2
		}
		d := svc.AuthorizeRequest(r.Context(), zc.Peer(), &authz.HTTPRequest{Path: r.URL.Path, Method: r.Method, Header: r.Header})
		src := zc.PeerID().String()
		if !d.Allowed {
			http.Error(w, "httpztn: "+src+" denied: "+d.Reason(), http.StatusForbidden)
			logRequest(svc, r, src, dest, d, http.StatusForbidden, start)
			return
		}
		if !svc.Logger().Enabled(r.Context(), slog.LevelInfo) {
			h.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		logRequest(svc, r, src, dest, d, sw.code(), start)
	})
}

// cleanPath resolves dot segments and merges slashes, keeping a trailing
// slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	if !strings.HasPrefix(c, "/") {
		c = "/" + c
	}
	return c
}

func logRequest(svc *ztnet.Service, r *http.Request, src, dest string, d authz.Decision, code int, start time.Time) {
	l := svc.Logger()
	if !l.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	decision := "deny"
	if d.Allowed {
		decision = "allow"
	}
	l.LogAttrs(r.Context(), slog.LevelInfo, "ztn request",
		slog.String("protocol", r.Proto),
		slog.String("source", src),
		slog.String("destination", dest),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("decision", decision),
		slog.String("reason", d.Reason()),
		slog.Int("status", code),
		slog.Duration("duration", time.Since(start)))
}

// statusWriter remembers the status code; Unwrap lets
// http.ResponseController reach the underlying writer (Flush, Hijack...).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client.
func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap returns the underlying ResponseWriter.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
