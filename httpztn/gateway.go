package httpztn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/ztnlabs/ztn/ztnet"
)

// Route sends matching public requests to a mesh service. Every condition
// that is set must hold; an empty condition matches anything.
type Route struct {
	// Host is the request's host without port, compared case-insensitively;
	// "*.example.com" matches any subdomain of example.com.
	Host string
	// PathPrefix matches the path by prefix, at a segment boundary ("/api"
	// matches "/api" and "/api/x", not "/apix").
	PathPrefix string
	// Methods lists the allowed methods.
	Methods []string
	// Headers maps header names to the exact value each must have.
	Headers map[string]string
	// Service is the mesh service the request goes to (required).
	Service string
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
		if r.Header.Get(name) != v {
			return false
		}
	}
	return true
}

// Gateway is an ingress gateway for north-south traffic: an http.Handler for
// a public server (TLS with an ordinary server certificate, or plain HTTP in
// development) that sends each request to the mesh service of the first
// matching Route, over ztn under the gateway's own identity (so intentions
// name the gateway's service as the source). It sets X-Forwarded-For,
// X-Forwarded-Host and X-Forwarded-Proto (replacing any the client sent),
// and strips hop-by-hop headers. A request no route matches gets 404; a
// refusal by the mesh 403 with the reason; an unreachable service 502 (503
// when it has no instance). Each request gets one access record on the
// gateway Service's logger ("ztn gateway request": client, host, method,
// path, service, status, bytes, duration), at Info when the service
// answered, at Warn with the reason when the gateway answered itself.
type Gateway struct {
	routes  []Route
	tr      *Transport
	proxy   *httputil.ReverseProxy
	handler http.Handler
}

type routeKey struct{}

// NewGateway returns a Gateway that reaches the mesh as svc, with routes
// tried in order. Close it to release its connections.
func NewGateway(svc *ztnet.Service, routes ...Route) (*Gateway, error) {
	for i, rt := range routes {
		if rt.Service == "" {
			return nil, fmt.Errorf("httpztn: gateway: route %d has no Service", i+1)
		}
		if rt.PathPrefix != "" && !strings.HasPrefix(rt.PathPrefix, "/") {
			return nil, fmt.Errorf("httpztn: gateway: route %d: PathPrefix %q must start with /", i+1, rt.PathPrefix)
		}
	}
	g := &Gateway{routes: append([]Route(nil), routes...), tr: NewTransport(svc)}
	g.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			rt := pr.In.Context().Value(routeKey{}).(*Route)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = rt.Service
			pr.Out.Host = ""
			pr.SetXForwarded()
		},
		Transport:    instrumentTransport(svc, g.tr),
		ErrorHandler: gatewayError,
	}
	log := svc.Logger()
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
	}), "gateway")
	return g, nil
}

// route sends r to the service of the first matching route, recording in
// rec (when not nil) where it went and why the gateway refused it.
func (g *Gateway) route(w http.ResponseWriter, r *http.Request, rec *gatewayRecord) {
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
	msg := "httpztn: gateway: no route for " + r.Method + " " + r.Host + r.URL.Path
	if rec != nil {
		rec.reason = "no route"
	}
	http.Error(w, msg, http.StatusNotFound)
}

type recordKey struct{}

// gatewayRecord is what the access record of one gateway request needs
// beyond the request and response.
type gatewayRecord struct {
	service string // the route's service; "" when none matched
	reason  string // why the gateway answered itself (no route, refused, unreachable)
}

// log writes the access record of a gateway request: at Info when the
// service answered, at Warn when the gateway answered itself.
func (rec *gatewayRecord) log(ctx context.Context, log *slog.Logger, r *http.Request, code int, in, out int64, start time.Time) {
	level := slog.LevelInfo
	if rec.reason != "" {
		level = slog.LevelWarn
	}
	if !log.Enabled(ctx, level) {
		return
	}
	log.LogAttrs(ctx, level, "ztn gateway request",
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
		slog.Duration("duration", time.Since(start)))
}

func gatewayError(w http.ResponseWriter, r *http.Request, err error) {
	if rec, ok := r.Context().Value(recordKey{}).(*gatewayRecord); ok {
		rec.reason = err.Error()
	}
	var denied *ztnet.DeniedError
	switch {
	case errors.As(err, &denied):
		http.Error(w, "httpztn: gateway: "+err.Error(), http.StatusForbidden)
	case errors.Is(err, ztnet.ErrNoInstance):
		http.Error(w, "httpztn: gateway: "+err.Error(), http.StatusServiceUnavailable)
	default:
		http.Error(w, "httpztn: gateway: "+err.Error(), http.StatusBadGateway)
	}
}

// ServeHTTP routes r into the mesh.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.handler.ServeHTTP(w, r) }

// Close closes the gateway's idle mesh connections.
func (g *Gateway) Close() error {
	g.tr.CloseIdleConnections()
	return nil
}
