package httpztn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/ztnlabs/ztn/ztnet"
)

// Transport is an http.RoundTripper that carries requests over ztn: the
// request URL's host is a service name ("http://api/v1/users"), resolved
// through the Service's resolver; each request goes to the next instance in
// round-robin order, over a connection pool kept per instance, on
// connections made by (*ztnet.Service).DialAddress, so the server is
// authenticated as that service and has authorized the caller before a
// request is sent. The scheme may be http or https: ztn is the encryption
// either way. A failed connection to one instance is retried on the next for
// requests without a body, within the request's context. HTTP/2 is used by
// default (one multiplexed connection per instance); WithHTTP1 picks
// HTTP/1.1.
//
// The request's context bounds resolution, dialing and the exchange.
type Transport struct {
	svc   *ztnet.Service
	http1 bool

	mu   sync.Mutex
	byID map[string]*serviceTransport
}

type serviceTransport struct {
	rt *http.Transport
	rr atomic.Uint64
}

// TransportOption configures a Transport.
type TransportOption func(*Transport)

// WithHTTP1 makes the Transport speak HTTP/1.1 (ALPN "ztn/1+http/1.1")
// instead of HTTP/2.
func WithHTTP1() TransportOption { return func(t *Transport) { t.http1 = true } }

// NewTransport returns a Transport that makes requests as svc.
func NewTransport(svc *ztnet.Service, opts ...TransportOption) *Transport {
	t := &Transport{svc: svc, byID: make(map[string]*serviceTransport)}
	for _, o := range opts {
		o(t)
	}
	return t
}

// NewClient returns an http.Client whose requests go over ztn as svc
// (through a Transport with opts), traced and measured by otelhttp with svc's
// providers:
//
//	resp, err := httpztn.NewClient(svc).Get("http://yelb-appserver/api/getvotes")
func NewClient(svc *ztnet.Service, opts ...TransportOption) *http.Client {
	return &http.Client{Transport: otelhttp.NewTransport(NewTransport(svc, opts...),
		otelhttp.WithTracerProvider(svc.TracerProvider()),
		otelhttp.WithMeterProvider(svc.MeterProvider()))}
}

// dialError marks an error that happened before the request was sent.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func (t *Transport) forService(service string) *serviceTransport {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.byID[service]
	if st != nil {
		return st
	}
	proto := "h2"
	var p http.Protocols
	if t.http1 {
		proto = "http/1.1"
		p.SetHTTP1(true)
	} else {
		p.SetUnencryptedHTTP2(true) // the ztn connection is the encryption
	}
	svc := t.svc
	st = &serviceTransport{rt: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			c, err := svc.DialAddress(ctx, service, addr, ztnet.WithProtocols(proto))
			if err != nil {
				return nil, &dialError{err}
			}
			return c, nil
		},
		Protocols:           &p,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}}
	t.byID[service] = st
	return st
}

// RoundTrip sends req to an instance of the service named by its URL host.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Hostname() == "" {
		closeBody(req)
		return nil, errors.New("httpztn: request URL has no host (want http://<service>/...)")
	}
	service := req.URL.Hostname()
	r := t.svc.Resolver()
	if r == nil {
		closeBody(req)
		return nil, fmt.Errorf("httpztn: %s: the Service has no resolver (ztnet.WithResolver)", service)
	}
	instances, err := r.Resolve(req.Context(), service)
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("httpztn: %s: %w", service, err)
	}
	if len(instances) == 0 {
		closeBody(req)
		return nil, fmt.Errorf("httpztn: %s: %w", service, ztnet.ErrNoInstance)
	}
	st := t.forService(service)
	first := int(st.rr.Add(1) % uint64(len(instances)))
	retryable := req.Body == nil || req.Body == http.NoBody
	var errs []error
	for i := range instances {
		in := instances[(first+i)%len(instances)]
		out := *req
		u := *req.URL
		u.Scheme, u.Host = "http", in.Address
		out.URL = &u
		if out.Host == "" {
			out.Host = req.URL.Host
		}
		resp, err := st.rt.RoundTrip(&out)
		if err == nil {
			resp.Request = req
			return resp, nil
		}
		var de *dialError
		var denied *ztnet.DeniedError
		if !errors.As(err, &de) || errors.As(err, &denied) || !retryable || req.Context().Err() != nil {
			return nil, fmt.Errorf("httpztn: %s: %w", service, err)
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("httpztn: %s: every instance failed: %w", service, errors.Join(errs...))
}

// CloseIdleConnections closes the idle connections of every pool.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, st := range t.byID {
		st.rt.CloseIdleConnections()
	}
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}
