package httpztn

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/internal/httppath"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// authorize returns middleware that authorizes every request against svc's
// L7 intentions (path without the query string, method, headers) before h
// sees it.
//
// The path is cleaned first by the one function the gateway and grpcztn use
// too (see the package doc): a path with a dot segment, an encoded slash, a
// backslash, a control character or a double percent-encoding gets 400 Bad
// Request; any other is decoded and its repeated slashes merged, and h sees
// that cleaned path (URL.Path, with URL.RawPath and RequestURI to match), so
// what is authorized is what is served.
//
// A refused request gets 403 Forbidden with the reason in a text/plain body
// ("httpztn: <source> denied: <reason>"); a request that did not come over
// a ztn connection gets 403 too. Refusals carry the response header
// Ztn-Refusal, by which the gateway knows to hide their body from the
// public. Each request gets one access-log record on svc's logger: at Debug
// when it was allowed, at Warn when it was refused, with the status, the
// request body bytes the handler read (bytes_in) and the response body bytes
// written (bytes_out).
func authorize(svc *ztnet.Service, h http.Handler) http.Handler {
	al := accessLog{log: ztnhook.Of(svc).Logger(), dest: slog.String("destination", svc.ID().String())}
	asDestination := attribute.String(ztnet.AttrDestinationID, svc.ID().String())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var start time.Time
		if al.log.Enabled(ctx, slog.LevelWarn) {
			start = time.Now()
		}
		zc := connOf(r)
		if zc == nil {
			msg := "httpztn: the request did not come over a ztn connection"
			refuseRequest(w, "not-ztn", msg, http.StatusForbidden)
			al.record(ctx, r, "", authz.Decision{}, msg, http.StatusForbidden, 0, errorBodyLen(msg), start)
			return
		}
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.SetAttributes(attribute.String(ztnet.AttrSourceID, peerOf(zc).String()), asDestination)
		}
		p, err := httppath.Clean(r.URL.EscapedPath())
		if err != nil {
			msg := "httpztn: " + err.Error()
			refuseRequest(w, "path", msg, http.StatusBadRequest)
			al.record(ctx, r, peerOf(zc).String(), authz.Decision{}, msg, http.StatusBadRequest, 0, errorBodyLen(msg), start)
			return
		}
		if p != r.URL.Path || r.URL.RawPath != "" {
			r = withPath(r, p)
		}
		q := &authzRequest{r: r}
		q.HTTPRequest = authz.HTTPRequest{Path: p, Method: r.Method, HeaderSource: q}
		d := ztnhook.Of(svc).AuthorizeRequest(ctx, peerOf(zc), &q.HTTPRequest)
		if !d.Allowed {
			src := peerOf(zc).String()
			msg := "httpztn: " + src + " denied: " + d.Reason()
			refuseRequest(w, "denied", msg, http.StatusForbidden)
			al.record(ctx, r, src, d, "", http.StatusForbidden, 0, errorBodyLen(msg), start)
			return
		}
		if !al.log.Enabled(ctx, slog.LevelDebug) {
			h.ServeHTTP(w, r) // no record to write: nothing to count
			return
		}
		r, body := countBody(r)
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		al.record(ctx, r, peerOf(zc).String(), d, "", sw.code(), body.count(), sw.n, start)
	})
}

// refusalHeader marks authorize's refusals ("not-ztn", "path", "denied"),
// whose bodies name the caller and the intention: the gateway replaces them
// with a generic answer.
const refusalHeader = "Ztn-Refusal"

// refuseRequest answers a refusal with msg, marked with refusalHeader.
func refuseRequest(w http.ResponseWriter, kind, msg string, code int) {
	w.Header().Set(refusalHeader, kind)
	http.Error(w, msg, code)
}

// authzRequest is what authz judges of a request. Its headers are read in
// place, when a permission has a header condition; "host" and ":authority"
// read the request's authority (Request.Host: net/http takes the Host
// header, or HTTP/2's :authority, out of Request.Header), as Envoy maps
// both names to :authority.
type authzRequest struct {
	authz.HTTPRequest
	r    *http.Request
	host [1]string
}

// Values returns the request's values of the header name (lower case).
func (q *authzRequest) Values(name string) []string {
	if name == "host" || name == ":authority" {
		if q.r.Host == "" {
			return nil
		}
		q.host[0] = q.r.Host
		return q.host[:]
	}
	return q.r.Header[textproto.CanonicalMIMEHeaderKey(name)]
}

// accessLog writes the per-request access records of one service.
type accessLog struct {
	log  *slog.Logger
	dest slog.Attr
}

// record writes the access record of r: at Debug when it was allowed, at
// Warn when it was refused; the reason is d's, or reason when it is set. in
// and out are the body bytes read and written. start is zero when the
// logger was not enabled at Warn when the request began.
func (al accessLog) record(ctx context.Context, r *http.Request, src string, d authz.Decision, reason string, code int, in, out int64, start time.Time) {
	level, decision := slog.LevelWarn, "deny"
	if d.Allowed {
		level, decision = slog.LevelDebug, "allow"
	}
	if start.IsZero() || !al.log.Enabled(ctx, level) {
		return
	}
	if reason == "" {
		reason = d.Reason()
	}
	al.log.LogAttrs(ctx, level, "ztn request",
		slog.String("protocol", r.Proto),
		slog.String("source", src),
		al.dest,
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("decision", decision),
		slog.String("reason", reason),
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
