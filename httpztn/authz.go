package httpztn

import (
	"context"
	"io"
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
// gets one access-log record on svc's logger: at Info when it was allowed,
// at Warn when it was refused, with the status, the request body bytes the
// handler read (bytes_in) and the response body bytes written (bytes_out).
func Authorize(svc *ztnet.Service, h http.Handler) http.Handler {
	al := accessLog{log: svc.Logger(), dest: slog.String("destination", svc.ID().String())}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var start time.Time
		if al.log.Enabled(ctx, slog.LevelWarn) {
			start = time.Now()
		}
		zc := connOf(r)
		if zc == nil {
			msg := "httpztn: the request did not come over a ztn connection"
			http.Error(w, msg, http.StatusForbidden)
			al.record(ctx, r, "", authz.Decision{}, http.StatusForbidden, 0, errorBodyLen(msg), start)
			return
		}
		if !isCleanPath(r.URL.Path) {
			r2 := *r
			u := *r.URL
			u.Path, u.RawPath = cleanPath(r.URL.Path), ""
			r2.URL = &u
			r = &r2
		}
		d := svc.AuthorizeRequest(ctx, zc.Peer(), &authz.HTTPRequest{Path: r.URL.Path, Method: r.Method, Header: r.Header})
		if !d.Allowed {
			src := zc.PeerID().String()
			msg := "httpztn: " + src + " denied: " + d.Reason()
			http.Error(w, msg, http.StatusForbidden)
			al.record(ctx, r, src, d, http.StatusForbidden, 0, errorBodyLen(msg), start)
			return
		}
		if !al.log.Enabled(ctx, slog.LevelInfo) {
			h.ServeHTTP(w, r) // no record to write: nothing to count
			return
		}
		r, body := countBody(r)
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		al.record(ctx, r, zc.PeerID().String(), d, sw.code(), body.count(), sw.n, start)
	})
}

// isCleanPath reports whether p is already what cleanPath makes of it, so
// that the common case costs a scan and no allocation.
func isCleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 1; i < len(p); i++ {
		if p[i-1] != '/' {
			continue
		}
		// p[i] starts a segment: it must not be empty, "." or "..".
		switch {
		case p[i] == '/':
			return false
		case p[i] == '.' && (i+1 == len(p) || p[i+1] == '/'):
			return false
		case p[i] == '.' && p[i+1] == '.' && (i+2 == len(p) || p[i+2] == '/'):
			return false
		}
	}
	return true
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

// accessLog writes the per-request access records of one service.
type accessLog struct {
	log  *slog.Logger
	dest slog.Attr
}

// record writes the access record of r: at Info when it was allowed, at
// Warn when it was refused. in and out are the body bytes read and written.
// start is zero when the logger was not enabled at Warn when the request
// began.
func (al accessLog) record(ctx context.Context, r *http.Request, src string, d authz.Decision, code int, in, out int64, start time.Time) {
	level, decision := slog.LevelWarn, "deny"
	if d.Allowed {
		level, decision = slog.LevelInfo, "allow"
	}
	if start.IsZero() || !al.log.Enabled(ctx, level) {
		return
	}
	al.log.LogAttrs(ctx, level, "ztn request",
		slog.String("protocol", r.Proto),
		slog.String("source", src),
		al.dest,
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("decision", decision),
		slog.String("reason", d.Reason()),
		slog.Int("status", code),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", out),
		slog.Duration("duration", time.Since(start)))
}

// errorBodyLen is the length of the body http.Error writes for msg.
func errorBodyLen(msg string) int64 { return int64(len(msg) + 1) }

// countBody returns r with its body counted as it is read (a shallow copy;
// r itself is not modified), and the counter (nil without a body).
func countBody(r *http.Request) (*http.Request, *countingBody) {
	if r.Body == nil || r.Body == http.NoBody {
		return r, nil
	}
	body := &countingBody{ReadCloser: r.Body}
	r2 := *r
	r2.Body = body
	return &r2, body
}

// countingBody counts the request body bytes the handler reads.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// count returns the bytes read; 0 for a request without a body.
func (b *countingBody) count() int64 {
	if b == nil {
		return 0
	}
	return b.n
}

// statusWriter remembers the status code and counts the body bytes written;
// Unwrap lets http.ResponseController reach the underlying writer (Flush,
// Hijack...).
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
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
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
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
