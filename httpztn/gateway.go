package httpztn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/ztnlabs/ztn/internal/httppath"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// Route sends matching public requests to a mesh service, for a [Gateway].
// Every condition that is set must hold; an empty condition matches
// anything.
type Route struct {
	// Host is the request's host without port, compared case-insensitively;
	// "*.example.com" matches any subdomain of example.com.
	Host string
	// PathPrefix matches whole path segments: "/api" (or "/api/") matches
	// "/api" and "/api/x", not "/apis". This differs from an intention's
	// [authz.HTTPMatch].PathPrefix, which is a plain string prefix as in
	// Consul ("/api" matches "/apis" there). It is compared with the
	// cleaned path (see [Gateway]), and must itself be clean.
	PathPrefix string
	// Methods lists the allowed methods.
	Methods []string
	// Headers maps header names to the exact value each must have ("Host"
	// is the request's host as sent, port included).
	Headers map[string]string
	// Service is the mesh service the request goes to (required).
	Service string
	// Retry is when a request is sent again to another instance of
	// Service (see [RetryPolicy]); the zero value retries nothing.
	Retry RetryPolicy
}

func (rt *Route) matches(r *http.Request) bool {
	if rt.Host != "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(host)
		want := strings.ToLower(rt.Host)
		if suffix, ok := strings.CutPrefix(want, "*"); ok {
			if !strings.HasSuffix(host, suffix) || len(host) == len(suffix) {
				return false
			}
		} else if host != want {
			return false
		}
	}
	if p := strings.TrimSuffix(rt.PathPrefix, "/"); p != "" {
		path := r.URL.Path
		if !strings.HasPrefix(path, p) || (len(path) > len(p) && path[len(p)] != '/') {
			return false
		}
	}
	if len(rt.Methods) > 0 {
		found := false
		for _, m := range rt.Methods {
			if strings.EqualFold(m, r.Method) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for name, v := range rt.Headers {
		got := r.Header.Get(name)
		if strings.EqualFold(name, "Host") {
			got = r.Host // net/http moves Host out of the headers
		}
		if got != v {
			return false
		}
	}
	return true
}

// Gateway is an ingress gateway for north-south traffic: an http.Handler for
// a public server (TLS with an ordinary server certificate, or plain HTTP in
// development) that sends each request to the mesh service of the first
// matching [Route], over ztn under the gateway's own identity (so intentions
// name the gateway's service as the source), as a [Transport] would, with
// the route's retry policy ([Route].Retry).
//
// Paths: the gateway cleans each request's path with the one function the
// back ends use (see the httpztn package doc): a path with a dot segment,
// an encoded slash, a backslash, a control character or a double
// percent-encoding is refused with 400; any other is decoded, its repeated
// slashes merged, and it is that cleaned path that routes match and that is
// forwarded. A route's PathPrefix therefore holds for what the service
// authorizes and serves.
//
// Headers: the gateway sets X-Forwarded-For, X-Forwarded-Host and
// X-Forwarded-Proto, and drops what the client sent that claims an origin
// or a path (Forwarded, every X-Forwarded-*, X-Real-IP, X-Client-IP,
// True-Client-IP, X-Cluster-Client-IP, CF-Connecting-IP, Fastly-Client-IP,
// X-Original-URL, X-Rewrite-URL), along with hop-by-hop headers.
//
// Refusals: the public client gets a generic answer, its status text and a
// request id ("forbidden (request id 7f3a09c2d4e1b5a8)"): 404 when no route
// matches, 400 for a refused path, 405 for CONNECT (the gateway opens no
// tunnels, and a CONNECT's path is not sent on), 403 when the mesh refused
// the gateway (at the connection, or a request the service's httpztn
// authorization denied), 502 when the service could not be reached or
// failed, 503 when it has no instance. The details (addresses,
// identities, intentions) go only to the access record with the same
// request id. Each request gets one access record on the gateway
// Service's logger ("ztn gateway request": client, host, method, path,
// service, status, bytes, duration, and for a refusal request_id and
// reason), at Debug when the service answered, at Warn when the gateway
// refused.
//
// The public http.Server is the caller's: give it timeouts, since anyone
// can connect to it (for example ReadHeaderTimeout 10 s, ReadTimeout 30 s,
// IdleTimeout 2 min, and a MaxHeaderBytes below the 1 MiB default).
//
// Use [NewGateway]: a zero Gateway answers every request with 500.
type Gateway struct {
	routes  []Route
	tr      *transport
	proxy   *httputil.ReverseProxy
	handler http.Handler
}

type routeKey struct{}

// routeTransport sends the gateway's requests with the retry policy of
// their route.
type routeTransport struct{ t *transport }

func (rt routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var p RetryPolicy
	if route, ok := req.Context().Value(routeKey{}).(*Route); ok {
		p = route.Retry
	}
	return rt.t.roundTrip(req, p)
}

// errNoGateway is what a Gateway not made by NewGateway reports.
var errNoGateway = errors.New("httpztn: Gateway not created with NewGateway")

// NewGateway returns a [Gateway] that reaches the mesh as svc, with routes
// tried in order. Close it to release its connections.
func NewGateway(svc *ztnet.Service, routes ...Route) (*Gateway, error) {
	if svc == nil {
		return nil, errors.New("httpztn: gateway: nil Service")
	}
	for i, rt := range routes {
		if rt.Service == "" {
			return nil, fmt.Errorf("httpztn: gateway: route %d has no Service", i+1)
		}
		if rt.PathPrefix != "" {
			if err := httppath.CheckClean(rt.PathPrefix); err != nil {
				return nil, fmt.Errorf("httpztn: gateway: route %d: PathPrefix %q must be a clean path starting with /: %w", i+1, rt.PathPrefix, err)
			}
		}
	}
	g := &Gateway{routes: append([]Route(nil), routes...), tr: newTransport(svc, config{})}
	g.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			rt := pr.In.Context().Value(routeKey{}).(*Route)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = rt.Service
			pr.Out.Host = ""
			dropForwarding(pr.Out.Header)
			pr.SetXForwarded()
		},
		Transport:      instrument(svc, routeTransport{g.tr}),
		ModifyResponse: serviceRefusal,
		ErrorHandler:   gatewayError,
	}
	log := ztnhook.Of(svc).Logger()
	g.handler = instrumentHandler(svc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !log.Enabled(r.Context(), slog.LevelWarn) { // no record at any level
			g.route(w, r, nil)
			return
		}
		start := time.Now()
		rec := &gatewayRecord{}
		r, body := countBody(r)
		sw := &statusWriter{ResponseWriter: w}
		g.route(sw, r, rec)
		rec.log(r.Context(), log, r, sw.code(), body.count(), sw.n, start)
	}), "gateway", otelhttp.WithPublicEndpointFn(publicEndpoint)) // a trace context from outside is linked, not continued
	return g, nil
}

// route cleans r's path and sends r to the service of the first matching
// route, recording in rec (when not nil) where it went and why the gateway
// refused it.
func (g *Gateway) route(w http.ResponseWriter, r *http.Request, rec *gatewayRecord) {
	if r.Method == http.MethodConnect {
		// A tunnel, whose path would not be sent on: routed by it, the
		// request would reach the service outside the route's prefix.
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE")
		refuse(w, rec, http.StatusMethodNotAllowed, "CONNECT: the gateway opens no tunnels")
		return
	}
	p, err := httppath.Clean(r.URL.EscapedPath())
	if err != nil {
		refuse(w, rec, http.StatusBadRequest, err.Error())
		return
	}
	if p != r.URL.Path || r.URL.RawPath != "" {
		r = withPath(r, p)
	}
	for i := range g.routes {
		if g.routes[i].matches(r) {
			ctx := context.WithValue(r.Context(), routeKey{}, &g.routes[i])
			if rec != nil {
				rec.service = g.routes[i].Service
				ctx = context.WithValue(ctx, recordKey{}, rec)
			}
			g.proxy.ServeHTTP(w, r.WithContext(ctx))
			return
		}
	}
	refuse(w, rec, http.StatusNotFound, "no route")
}

// withPath returns a shallow copy of r whose URL has the cleaned path p
// (and no RawPath, so that p is what is forwarded, escaped as needed).
func withPath(r *http.Request, p string) *http.Request {
	r2 := *r
	u := *r.URL
	u.Path, u.RawPath = p, ""
	r2.URL = &u
	r2.RequestURI = u.RequestURI()
	return &r2
}

// dropForwarding deletes the headers a client could send to claim another
// origin or path: Forwarded, every X-Forwarded-*, and the client-IP and
// path-override headers proxies and frameworks honour.
func dropForwarding(h http.Header) {
	for name := range h {
		if strings.HasPrefix(name, "X-Forwarded-") {
			delete(h, name)
			continue
		}
		switch name {
		case "Forwarded", "X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "X-Cluster-Client-Ip",
			"Cf-Connecting-Ip", "Fastly-Client-Ip", "X-Original-Url", "X-Rewrite-Url", "X-Original-Forwarded-For":
			delete(h, name)
		}
	}
}

type recordKey struct{}

// gatewayRecord is what the access record of one gateway request needs
// beyond the request and response.
type gatewayRecord struct {
	service   string // the route's service; "" when none matched
	reason    string // why the gateway refused (no route, refused, unreachable)
	requestID string // the id the refusal's public answer gave
}

// log writes the access record of a gateway request: at Debug when the
// service answered, at Warn when the gateway refused.
func (rec *gatewayRecord) log(ctx context.Context, log *slog.Logger, r *http.Request, code int, in, out int64, start time.Time) {
	level := slog.LevelDebug
	if rec.reason != "" {
		level = slog.LevelWarn
	}
	if !log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("client", r.RemoteAddr),
		slog.String("protocol", r.Proto),
		slog.String("host", r.Host),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("service", rec.service),
		slog.String("reason", rec.reason),
		slog.Int("status", code),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", out),
		slog.Duration("duration", time.Since(start)),
	}
	if rec.requestID != "" {
		attrs = append(attrs, slog.String("request_id", rec.requestID))
	}
	log.LogAttrs(ctx, level, "ztn gateway request", attrs...)
}

// refuse answers a refusal with a generic public body (status text and a
// new request id) and notes the reason and id in rec, when not nil, for the
// access record.
func refuse(w http.ResponseWriter, rec *gatewayRecord, code int, reason string) {
	id := newRequestID()
	if rec != nil {
		rec.reason, rec.requestID = reason, id
	}
	http.Error(w, publicText(code, id), code)
}

// publicText is the body of a public refusal, without http.Error's newline:
// "forbidden (request id 7f3a09c2d4e1b5a8)".
func publicText(code int, id string) string {
	return strings.ToLower(http.StatusText(code)) + " (request id " + id + ")"
}

// newRequestID returns 16 random hex digits.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// gatewayError is the proxy's ErrorHandler: the mesh refused the gateway,
// or the service could not be reached or failed.
func gatewayError(w http.ResponseWriter, r *http.Request, err error) {
	rec, _ := r.Context().Value(recordKey{}).(*gatewayRecord)
	var denied *ztnet.DeniedError
	switch {
	case errors.As(err, &denied):
		refuse(w, rec, http.StatusForbidden, err.Error())
	case errors.Is(err, ztnet.ErrNoInstance):
		refuse(w, rec, http.StatusServiceUnavailable, err.Error())
	default:
		refuse(w, rec, http.StatusBadGateway, err.Error())
	}
}

// maxRefusalReason bounds how much of a service's refusal body the access
// record keeps.
const maxRefusalReason = 1 << 10

// serviceRefusal is the proxy's ModifyResponse: a refusal by the service's
// httpztn authorization (marked with the refusal header) carries the
// caller's identity and the intention in its body; the public client gets
// the generic answer instead, and the access record the service's reason.
func serviceRefusal(resp *http.Response) error {
	if resp.Header.Get(refusalHeader) == "" {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxRefusalReason))
	_ = resp.Body.Close()
	id := newRequestID()
	if rec, ok := resp.Request.Context().Value(recordKey{}).(*gatewayRecord); ok {
		rec.reason, rec.requestID = "service refused: "+strings.TrimSpace(string(b)), id
	}
	text := publicText(resp.StatusCode, id) + "\n"
	resp.Header = http.Header{
		"Content-Type":           {"text/plain; charset=utf-8"},
		"X-Content-Type-Options": {"nosniff"},
		"Content-Length":         {strconv.Itoa(len(text))},
	}
	resp.Body = io.NopCloser(strings.NewReader(text))
	resp.ContentLength = int64(len(text))
	resp.Trailer = nil
	return nil
}

// ServeHTTP routes r into the mesh.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.handler == nil {
		id := newRequestID()
		slog.Default().LogAttrs(r.Context(), slog.LevelError, "ztn gateway request",
			slog.String("reason", errNoGateway.Error()), slog.String("request_id", id))
		http.Error(w, publicText(http.StatusInternalServerError, id), http.StatusInternalServerError)
		return
	}
	g.handler.ServeHTTP(w, r)
}

// Close closes the gateway's idle mesh connections.
func (g *Gateway) Close() error {
	if g.tr == nil {
		return errNoGateway
	}
	g.tr.closeIdleConnections()
	return nil
}
