package httpztn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"

	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/errjoin"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// Transport is an http.RoundTripper that carries requests over ztn: the
// request URL's host is a service name ("http://api/v1/users"), resolved
// through the Service's resolver; each request goes to the next instance in
// round-robin order (or in the order of the resolver, when it is a
// [discovery.Picker]), over a connection pool kept per instance, on
// connections made by the Service as Dial would, so the server is
// authenticated as that service and has authorized the caller before a
// request is sent. The scheme may be http or https: ztn is the encryption
// either way. HTTP/2 is used by default (one multiplexed connection per
// instance); [WithHTTP1] picks HTTP/1.1. Requests are traced and measured by
// otelhttp with the Service's providers, unless both are OpenTelemetry's
// no-op ones.
//
// # Failures and retries
//
// When the connection to an instance cannot be made, the request goes to
// the next instance, since nothing was sent, as long as its body can be
// sent again (no body, or Request.GetBody); an instance that refuses the
// caller by its intentions ends the request with a *ztnet.DeniedError. A
// request that was sent and failed (an error, a 5xx answer, no answer in
// time) is sent again to another instance only under a retry policy
// ([WithRetry], [RetryPolicy]), and only when it is idempotent. The error of
// a request that failed names each attempt; errors.As and errors.Is find
// the ztnet errors and the context's error in it.
//
// # Discovery
//
// Every request reads the instances from the resolver, whose answer comes
// from its cache (a discovery resolver keeps it fresh in the background), so
// a deregistered instance gets no new request; the Transport only rebuilds
// its list of pools when that answer changes. When the resolver is a
// [discovery.Picker] (Consul's is), it orders the instances of each request
// and is told how each connection attempt went, so that an instance that
// keeps failing is ejected: tried last, by the Transport and by ztnet.Dial.
//
// The request's context bounds resolution, dialing and the exchange,
// retries included. The request's URL keeps the service name, which is
// also the Host header unless Request.Host says otherwise; the request is
// sent to the instance as it is, or as a shallow copy with the scheme the
// pools use.
//
// # Redirects
//
// When an http.Client follows a redirect, the Transport refuses the next
// request if it goes to another service (its URL names another host) or to
// a scheme other than http and https, with an error and a Warn record ("ztn
// redirect refused"): following it would send the caller's identity, and
// its request, to a service the caller did not name. A redirect within the
// service is followed. [WithCrossServiceRedirects] allows redirects to
// other services.
//
// Use [NewTransport]: a zero Transport fails every request.
type Transport struct {
	rt   http.RoundTripper // core, or otelhttp's transport around it
	core *transport
}

// transport is what a Transport does, without OpenTelemetry.
type transport struct {
	svc     *ztnet.Service
	cfg     config
	log     *slog.Logger
	retries metric.Int64Counter
	svcAttr attribute.KeyValue // the service attribute of its metrics
	// asSource is svc's SPIFFE ID as the span attribute
	// ztnet.AttrSourceID (telemetry.go).
	asSource attribute.KeyValue

	mu       sync.Mutex                                   // serializes changes to services
	services atomic.Pointer[map[string]*serviceTransport] // copied on write
}

// serviceTransport sends the requests of one service.
type serviceTransport struct {
	t       *transport
	service string
	picker  discovery.Picker // the resolver, when it balances; or nil
	rr      atomic.Uint64    // round robin without a picker

	snap atomic.Pointer[instanceSet]

	mu     sync.Mutex // guards byAddr
	byAddr map[string]*instanceTransport
}

// instanceSet is the pools of the instances the resolver answered.
type instanceSet struct {
	found  []discovery.Instance          // the answer, as the resolver returned it
	list   []*instanceTransport          // the pool of each found instance
	byAddr map[string]*instanceTransport // the pools by address; not modified
}

// instanceTransport is the connection pool of one instance.
type instanceTransport struct {
	in discovery.Instance
	rt *http.Transport
}

// NewTransport returns a Transport that makes requests as svc, traced and
// measured by otelhttp with svc's providers (not at all when both are
// OpenTelemetry's no-op providers).
func NewTransport(svc *ztnet.Service, opts ...Option) *Transport {
	core := newTransport(svc, newConfig(opts))
	return &Transport{rt: instrument(svc, core), core: core}
}

func newTransport(svc *ztnet.Service, cfg config) *transport {
	t := &transport{svc: svc, cfg: cfg, log: ztnhook.Of(svc).Logger(), svcAttr: attribute.String("service", svc.ID().Name),
		asSource: attribute.String(ztnet.AttrSourceID, svc.ID().String())}
	var err error
	t.retries, err = ztnhook.Of(svc).MeterProvider().Meter(instrumentationName).Int64Counter("ztn.http.retries",
		metric.WithDescription("Requests sent again to another instance by a retry policy, by destination and reason"))
	if err != nil { // only an invalid name or description fails
		t.retries = metricnoop.Int64Counter{}
	}
	t.services.Store(&map[string]*serviceTransport{})
	return t
}

// NewClient returns an http.Client whose requests go over ztn as svc,
// through NewTransport(svc, opts...):
//
//	resp, err := httpztn.NewClient(svc).Get("http://yelb-appserver/api/getvotes")
//
// The client's CloseIdleConnections reaches the Transport's. It follows
// redirects within a service only, unless WithCrossServiceRedirects.
func NewClient(svc *ztnet.Service, opts ...Option) *http.Client {
	return &http.Client{Transport: NewTransport(svc, opts...)}
}

// RoundTrip sends req to an instance of the service named by its URL host.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.rt == nil {
		closeBody(req)
		return nil, errors.New("httpztn: Transport not created with NewTransport")
	}
	return t.rt.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of every pool.
func (t *Transport) CloseIdleConnections() {
	if t.core != nil { // a zero Transport has no connections
		t.core.closeIdleConnections()
	}
}

// dialError marks an error that happened before the request was sent.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// forService returns the transport of service, made on first use.
func (t *transport) forService(service string) *serviceTransport {
	if st := (*t.services.Load())[service]; st != nil {
		return st
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.services.Load()
	if st := old[service]; st != nil {
		return st
	}
	st := &serviceTransport{t: t, service: service, byAddr: make(map[string]*instanceTransport)}
	st.picker, _ = ztnhook.Of(t.svc).Resolver().(discovery.Picker)
	m := make(map[string]*serviceTransport, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[service] = st
	t.services.Store(&m)
	return st
}

// instances returns the pools of the instances the resolver now answers
// for the service. The answer of a discovery resolver is the slice it
// cached, the same until the instances change: the pools built for it are
// reused without a lookup.
func (st *serviceTransport) instances(ctx context.Context) (*instanceSet, error) {
	r := ztnhook.Of(st.t.svc).Resolver()
	if r == nil {
		return nil, errors.New("the Service has no resolver (ztnet.WithResolver)")
	}
	found, err := r.Resolve(ctx, st.service)
	if err == nil && len(found) == 0 {
		err = ztnet.ErrNoInstance
	}
	if err != nil {
		return nil, err
	}
	cur := st.snap.Load()
	switch {
	case cur != nil && len(found) == len(cur.found) && &found[0] == &cur.found[0]:
		return cur, nil
	case cur != nil && slices.EqualFunc(found, cur.found, sameInstance):
		// A resolver that answers with a new slice each time: compare.
		set := &instanceSet{found: found, list: cur.list, byAddr: cur.byAddr}
		st.snap.CompareAndSwap(cur, set)
		return set, nil
	}
	set := st.update(found)
	st.snap.Store(set)
	return set, nil
}

func sameInstance(a, b discovery.Instance) bool { return a.ID == b.ID && a.Address == b.Address }

// update returns the pools of found, reusing those of the instances it
// already had and closing the idle connections of instances that are gone.
func (st *serviceTransport) update(found []discovery.Instance) *instanceSet {
	st.mu.Lock()
	defer st.mu.Unlock()
	set := &instanceSet{found: found, list: make([]*instanceTransport, len(found))}
	keep := make(map[string]*instanceTransport, len(found))
	for i, in := range found {
		it := st.byAddr[in.Address]
		if it == nil {
			it = st.newInstance(in)
		}
		keep[in.Address] = it
		set.list[i] = it
	}
	for addr, it := range st.byAddr {
		if keep[addr] == nil {
			it.rt.CloseIdleConnections() // requests in flight finish
		}
	}
	st.byAddr = keep
	set.byAddr = keep
	return set
}

// pickOrder is the order in which one request tries the instances: the
// picker's, or round robin.
type pickOrder struct {
	set    *instanceSet
	picked []discovery.Instance // the picker's order; nil without a picker
	first  int
	n      int
}

// order returns the order of the next request's attempts.
func (st *serviceTransport) order(set *instanceSet) (pickOrder, error) {
	if st.picker != nil {
		picked := st.picker.Pick(st.service, set.found)
		if len(picked) == 0 {
			return pickOrder{}, ztnet.ErrNoInstance
		}
		return pickOrder{set: set, picked: picked, n: len(picked)}, nil
	}
	n := len(set.list)
	return pickOrder{set: set, first: int(st.rr.Add(1) % uint64(n)), n: n}, nil
}

// at returns the pool of the i-th attempt.
func (o *pickOrder) at(i int) *instanceTransport {
	if o.picked != nil {
		if it := o.set.byAddr[o.picked[i].Address]; it != nil {
			return it
		}
		return o.set.list[i%len(o.set.list)] // the picker made up an instance
	}
	return o.set.list[(o.first+i)%o.n]
}

func (st *serviceTransport) newInstance(in discovery.Instance) *instanceTransport {
	svc, service, http1 := st.t.svc, st.service, st.t.cfg.http1
	proto := "h2"
	if http1 {
		proto = "http/1.1"
	}
	picker := st.picker
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, err := ztnhook.Of(svc).DialAddress(ctx, service, in.Address, proto)
		if picker != nil {
			var denied *ztnet.DeniedError
			if errors.As(err, &denied) {
				picker.Report(service, in, nil) // the instance answered
			} else {
				picker.Report(service, in, err)
			}
		}
		if err != nil {
			return nil, &dialError{err}
		}
		return c, nil
	}
	var p http.Protocols
	rt := &http.Transport{Protocols: &p, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}
	if http1 {
		p.SetHTTP1(true)
		rt.DialContext = dial
	} else {
		// HTTP/2 requests go out as https (see RoundTrip) and the ztn
		// connection is what DialTLSContext returns: it is past its TLS
		// handshake, as DialTLSContext requires, and net/http, which cannot
		// see that TLS (it is not a *tls.Conn), speaks HTTP/2 over it with
		// prior knowledge, as UnencryptedHTTP2 asks. The connection joins
		// the HTTP/2 pool of https requests, so later requests take it from
		// there directly, as they would over crypto/tls, instead of through
		// the general connection pool (a dozen allocations per request).
		p.SetUnencryptedHTTP2(true)
		rt.DialTLSContext = dial
	}
	return &instanceTransport{in: in, rt: rt}
}

// RoundTrip sends req with the Transport's retry policy.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTrip(req, t.cfg.retry)
}

// roundTrip sends req to an instance of the service named by its URL host,
// and to others as the retry policy p allows (see RetryPolicy).
func (t *transport) roundTrip(req *http.Request, p RetryPolicy) (*http.Response, error) {
	if req.URL == nil || req.URL.Hostname() == "" {
		closeBody(req)
		return nil, errors.New("httpztn: request URL has no host (want http://<service>/...)")
	}
	if req.Response != nil { // an http.Client following a redirect
		if err := t.checkRedirect(req); err != nil {
			closeBody(req)
			return nil, err
		}
	}
	if s := req.URL.Scheme; s != "http" && s != "https" {
		closeBody(req)
		return nil, fmt.Errorf("httpztn: unsupported scheme %q (want http or https)", s)
	}
	ctx := req.Context()
	service := req.URL.Hostname()
	st := t.forService(service)
	set, err := st.instances(ctx)
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("httpztn: %s: %w", service, err)
	}
	order, err := st.order(set)
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("httpztn: %s: %w", service, err)
	}
	// The scheme the pools take (see newInstance): https for HTTP/2, http
	// for HTTP/1.1. The caller's request is left as it is.
	scheme := "https"
	if t.cfg.http1 {
		scheme = "http"
	}
	out := req
	if req.URL.Scheme != scheme {
		out = new(http.Request)
		*out = *req
		u := *req.URL
		u.Scheme = scheme
		out.URL = &u
	}
	out = t.traceEnds(out)
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	mayRetry := p.MaxRetries > 0 && replayable && idempotent(req)
	retries := 0
	var errs []error
attempts:
	for i := range order.n {
		it := order.at(i)
		if i > 0 {
			if out, err = replay(req, out); err != nil {
				errs = append(errs, err)
				break
			}
		}
		last := i+1 == order.n
		buffer := 0
		if mayRetry && retries < p.MaxRetries && !last {
			buffer = p.BufferBody
		}
		resp, err := it.send(out, p.PerTryTimeout, buffer)
		if err == nil {
			if resp.StatusCode < 500 || !mayRetry || retries == p.MaxRetries || last {
				resp.Request = req
				return resp, nil
			}
			retries++
			t.retried(ctx, service, it, retries, "server-error", slog.Int("status", resp.StatusCode))
			discardBody(resp)
			errs = append(errs, fmt.Errorf("%s at %s answered %s", service, it.in.Address, resp.Status))
			continue
		}
		if ctx.Err() != nil { // the caller gave up: no more attempts
			return nil, fmt.Errorf("httpztn: %s: %w", service, err)
		}
		var denied *ztnet.DeniedError
		if errors.As(err, &denied) { // the policy is the same on every instance
			return nil, fmt.Errorf("httpztn: %w", err)
		}
		sent := !errors.As(err, new(*dialError))
		if sent || errors.As(err, new(*perTryTimeoutError)) { // ztnet's dial errors name both already
			err = fmt.Errorf("%s at %s: %w", service, it.in.Address, err)
		}
		errs = append(errs, err)
		switch {
		case last:
		case !sent && replayable:
			continue // nothing was sent: the next instance may take the request
		case sent && mayRetry && retries < p.MaxRetries:
			retries++
			reason := "connection-error"
			if errors.As(err, new(*perTryTimeoutError)) {
				reason = "per-try-timeout"
			}
			t.retried(ctx, service, it, retries, reason, slog.String("error", err.Error()))
			continue
		}
		break attempts
	}
	if len(errs) == 1 {
		return nil, &requestError{msg: "httpztn: " + errs[0].Error(), err: errs[0]}
	}
	joined := errjoin.List(errs)
	return nil, &requestError{msg: fmt.Sprintf("httpztn: %d attempts failed: %v", len(errs), joined), err: joined}
}

// checkRedirect refuses req, a redirect the client is following, when it
// leaves http(s) or, unless allowed, the service that answered with it.
func (t *transport) checkRedirect(req *http.Request) error {
	var from string
	if prev := req.Response.Request; prev != nil && prev.URL != nil {
		from = prev.URL.Hostname()
	}
	to := req.URL.Hostname()
	var err error
	switch s := req.URL.Scheme; {
	case s != "http" && s != "https":
		err = fmt.Errorf("httpztn: redirect to scheme %q refused (only http and https go over ztn)", s)
	case !t.cfg.crossRedirects && from != to:
		err = fmt.Errorf("httpztn: redirect from service %q to service %q refused: it would carry %s's identity to another service (WithCrossServiceRedirects allows it)", from, to, t.svc.ID().Name)
	default:
		return nil
	}
	ztnhook.Of(t.svc).Logger().LogAttrs(req.Context(), slog.LevelWarn, "ztn redirect refused",
		slog.String("from", from), slog.String("to", to), slog.String("location", req.URL.Redacted()),
		slog.String("error", err.Error()))
	return err
}

// closeIdleConnections closes the idle connections of every pool.
func (t *transport) closeIdleConnections() {
	for _, st := range *t.services.Load() {
		st.mu.Lock()
		for _, it := range st.byAddr {
			it.rt.CloseIdleConnections()
		}
		st.mu.Unlock()
	}
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}
