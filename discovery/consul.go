package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztnlabs/ztn/internal/consulx"

	"github.com/hashicorp/consul/api"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Consul is a Resolver, Registrar and Picker backed by a Consul agent.
//
// Resolve answers from a cache. The first Resolve of a service starts a
// background watch of its healthy Connect instances (Connect-native services
// and sidecar proxies, /v1/health/connect/<service>?passing, as blocking
// queries) and waits for Consul's first answer; later calls read the cache
// and make no request. A watch unused for the idle timeout stops. When
// Consul cannot be reached, or answers with errors, the last instances it
// gave stay in use (see Staleness) while the watch retries with backoff.
//
// Register registers a Connect-native instance with a TTL check that a
// background loop keeps passing while Registration.Healthy says the
// instance can serve, and turns critical, with the reason as its output,
// when it cannot. If the process dies the check lapses and Consul removes
// the instance after the deregister-critical delay.
//
// Pick and Report balance dials across instances with a Balancer.
//
// Close stops every watch and heartbeat. It does not deregister: the
// functions Register returns do (ztnet listeners call them on Close).
type Consul struct {
	client   *api.Client
	cfg      consulConfig
	log      *slog.Logger
	balancer *Balancer

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	watches map[string]*watch

	gauge metric.Registration
}

var (
	_ Resolver  = (*Consul)(nil)
	_ Registrar = (*Consul)(nil)
	_ Picker    = (*Consul)(nil)
)

// ConsulOption configures a Consul.
type ConsulOption func(*consulConfig)

type consulConfig struct {
	query           api.QueryOptions
	wait            time.Duration
	idle            time.Duration
	every           time.Duration
	burst           int
	minBackoff      time.Duration
	maxBackoff      time.Duration
	ttl             time.Duration
	deregisterAfter time.Duration
	logger          *slog.Logger
	meterProvider   metric.MeterProvider
	balancer        *Balancer
}

// WithConsulQueryOptions sets the options of every request to Consul: ACL
// Token, Datacenter, AllowStale, UseCache... (WaitIndex and WaitTime are
// managed by the watches). The api.Client's own defaults apply otherwise.
func WithConsulQueryOptions(q api.QueryOptions) ConsulOption {
	return func(c *consulConfig) { c.query = q }
}

// WithConsulWaitTime sets how long a blocking query may wait for a change
// (default 5m, Consul's default; Consul caps it at 10m).
func WithConsulWaitTime(d time.Duration) ConsulOption {
	return func(c *consulConfig) { c.wait = d }
}

// WithConsulIdleTimeout stops the watch of a service that Resolve has not
// asked for in d (default 10m); 0 keeps watches until Close.
func WithConsulIdleTimeout(d time.Duration) ConsulOption {
	return func(c *consulConfig) { c.idle = d }
}

// WithConsulRateLimit limits each watch to one request per every on
// average, in bursts of up to burst (default: every 100ms, burst 2), so
// that a service that changes constantly does not make its watch spin.
func WithConsulRateLimit(every time.Duration, burst int) ConsulOption {
	return func(c *consulConfig) { c.every, c.burst = every, burst }
}

// WithConsulBackoff sets the jittered exponential backoff between failed
// requests (default 200ms doubling up to 15s).
func WithConsulBackoff(minWait, maxWait time.Duration) ConsulOption {
	return func(c *consulConfig) { c.minBackoff, c.maxBackoff = minWait, maxWait }
}

// WithConsulCheckTTL sets the TTL of registered instances' health checks
// (default 10s). The check is updated every third of it.
func WithConsulCheckTTL(d time.Duration) ConsulOption {
	return func(c *consulConfig) { c.ttl = d }
}

// WithConsulDeregisterAfter sets how long an instance's check may stay
// critical (its process crashed, say) before Consul removes the instance
// (default 1m; Consul does not go below 1m).
func WithConsulDeregisterAfter(d time.Duration) ConsulOption {
	return func(c *consulConfig) { c.deregisterAfter = d }
}

// WithConsulLogger sets the logger (default slog.Default()).
func WithConsulLogger(l *slog.Logger) ConsulOption {
	return func(c *consulConfig) { c.logger = l }
}

// WithConsulMeterProvider sets the OpenTelemetry meter provider for the
// ztn.discovery.staleness gauge (default: otel's global provider).
func WithConsulMeterProvider(p metric.MeterProvider) ConsulOption {
	return func(c *consulConfig) { c.meterProvider = p }
}

// WithConsulBalancer sets the Balancer behind Pick and Report (default: a
// new zero Balancer).
func WithConsulBalancer(b *Balancer) ConsulOption {
	return func(c *consulConfig) { c.balancer = b }
}

// NewConsul returns a Consul that talks to the agent client is configured
// for. Close it when done.
func NewConsul(client *api.Client, opts ...ConsulOption) *Consul {
	cfg := consulConfig{
		wait:            5 * time.Minute,
		idle:            10 * time.Minute,
		every:           100 * time.Millisecond,
		burst:           2,
		minBackoff:      200 * time.Millisecond,
		maxBackoff:      15 * time.Second,
		ttl:             10 * time.Second,
		deregisterAfter: time.Minute,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.meterProvider == nil {
		cfg.meterProvider = otel.GetMeterProvider()
	}
	if cfg.balancer == nil {
		cfg.balancer = new(Balancer)
	}
	cfg.burst = max(cfg.burst, 1)
	cfg.minBackoff = max(cfg.minBackoff, time.Millisecond)
	cfg.maxBackoff = max(cfg.maxBackoff, cfg.minBackoff)
	cfg.ttl = max(cfg.ttl, time.Second)
	c := &Consul{
		client:   client,
		cfg:      cfg,
		log:      cfg.logger.With("component", "ztn.discovery.consul"),
		balancer: cfg.balancer,
		watches:  make(map[string]*watch),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.registerGauge()
	if cfg.idle > 0 {
		c.wg.Add(1)
		go c.reapIdle()
	}
	return c
}

// Close stops every watch and registration heartbeat and waits for them. It
// does not deregister instances. Resolve and Register fail afterwards.
func (c *Consul) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	if c.gauge != nil {
		if err := c.gauge.Unregister(); err != nil {
			return fmt.Errorf("discovery: close: %w", err)
		}
	}
	return nil
}

// Pick orders instances for a dial (see Balancer).
func (c *Consul) Pick(service string, instances []Instance) []Instance {
	return c.balancer.Pick(service, instances)
}

// Report records the outcome of a dial (see Balancer).
func (c *Consul) Report(service string, in Instance, err error) {
	c.balancer.Report(service, in, err)
}

// Balancer returns the Balancer behind Pick and Report.
func (c *Consul) Balancer() *Balancer { return c.balancer }

// Resolve returns the healthy instances of service, from the cache once its
// watch has had Consul's first answer. The first call waits for that answer
// (bounded by ctx) and returns Consul's error if that answer is one. While
// Consul is unreachable the last instances it gave are returned. An unknown
// service has no instances (and no error). The returned slice must not be
// modified.
func (c *Consul) Resolve(ctx context.Context, service string) ([]Instance, error) {
	if service == "" {
		return nil, errors.New("discovery: resolve: empty service name")
	}
	w, err := c.watchFor(service)
	if err != nil {
		return nil, err
	}
	st := w.state.Load()
	if !st.synced && st.err == nil {
		select {
		case <-w.ready:
		case <-w.done:
			return nil, fmt.Errorf("discovery: resolve %s: %w", service, errClosed)
		case <-ctx.Done():
			return nil, fmt.Errorf("discovery: resolve %s: waiting for Consul's first answer: %w", service, ctx.Err())
		}
		st = w.state.Load()
	}
	switch {
	case !st.synced:
		return nil, fmt.Errorf("discovery: resolve %s: %w", service, st.err)
	case len(st.instances) == 0 && st.filtered:
		return nil, fmt.Errorf("discovery: resolve %s: Consul filtered the answer by ACLs: the token needs service:read on %q and node:read on its nodes", service, service)
	}
	return st.instances, nil
}

var errClosed = errors.New("discovery: consul resolver closed")

// Staleness reports for how long the cached instances of service have gone
// unconfirmed because Consul could not be reached or answered with errors:
// 0 while its watch is healthy (or when there is no watch).
func (c *Consul) Staleness(service string) time.Duration {
	c.mu.Lock()
	w := c.watches[service]
	c.mu.Unlock()
	if w == nil {
		return 0
	}
	return w.state.Load().staleness(time.Now())
}

// watchFor returns the watch of service, started if needed, and marks it
// used.
func (c *Consul) watchFor(service string) (*watch, error) {
	now := time.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("discovery: resolve %s: %w", service, errClosed)
	}
	w := c.watches[service]
	if w == nil {
		w = &watch{
			c:       c,
			service: service,
			ready:   make(chan struct{}),
			done:    make(chan struct{}),
		}
		w.state.Store(&watchState{})
		ctx, cancel := context.WithCancel(c.ctx)
		w.cancel = cancel
		c.watches[service] = w
		c.wg.Add(1)
		go w.run(ctx)
	}
	w.lastUsed.Store(now)
	return w, nil
}

// reapIdle stops watches that have not been used for the idle timeout.
func (c *Consul) reapIdle() {
	defer c.wg.Done()
	t := time.NewTicker(max(c.cfg.idle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		cutoff := time.Now().Add(-c.cfg.idle).UnixNano()
		c.mu.Lock()
		for name, w := range c.watches {
			if w.lastUsed.Load() < cutoff {
				delete(c.watches, name)
				w.cancel()
				c.log.Debug("consul watch stopped: unused", "service", name, "idle", c.cfg.idle)
			}
		}
		c.mu.Unlock()
	}
}

// watching returns the services being watched, for tests and metrics.
func (c *Consul) watching() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for name := range c.watches {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func (c *Consul) registerGauge() {
	m := c.cfg.meterProvider.Meter("github.com/ztnlabs/ztn/discovery")
	stale, err := m.Float64ObservableGauge("ztn.discovery.staleness",
		metric.WithUnit("s"),
		metric.WithDescription("How long the cached instances of a service have gone unconfirmed by Consul (0 while its watch is healthy)."))
	if err != nil {
		c.log.Warn("ztn.discovery gauges unavailable", "err", err)
		return
	}
	seen, err := m.Int64ObservableGauge("ztn.discovery.instances",
		metric.WithUnit("{instance}"),
		metric.WithDescription("Healthy instances of a service in the cache Dial reads (services with a synced watch)."))
	if err != nil {
		c.log.Warn("ztn.discovery gauges unavailable", "err", err)
		return
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		now := time.Now()
		c.mu.Lock()
		defer c.mu.Unlock()
		for name, w := range c.watches {
			attrs := metric.WithAttributes(attribute.String("service", name))
			st := w.state.Load()
			o.ObserveFloat64(stale, st.staleness(now).Seconds(), attrs)
			if st.synced {
				o.ObserveInt64(seen, int64(len(st.instances)), attrs)
			}
		}
		return nil
	}, stale, seen)
	if err != nil {
		c.log.Warn("ztn.discovery gauges unavailable", "err", err)
		return
	}
	c.gauge = reg
}

// watch keeps the healthy instances of one service fresh.
type watch struct {
	c        *Consul
	service  string
	cancel   context.CancelFunc
	ready    chan struct{} // closed at Consul's first answer, good or bad
	done     chan struct{} // closed when run returns
	lastUsed atomic.Int64  // unix nanoseconds of the last Resolve
	state    atomic.Pointer[watchState]
}

// watchState is an immutable snapshot of a watch.
type watchState struct {
	instances []Instance
	synced    bool // Consul has answered successfully at least once
	filtered  bool // Consul left results out because of ACLs
	// staleSince is when the current run of failed requests began: the
	// instances were current until then, as far as ztn can tell (a
	// connection that dies silently is noticed within the wait time + 15s).
	staleSince time.Time
	err        error // the last request's error; nil after a success
}

func (s *watchState) staleness(now time.Time) time.Duration {
	if s.err == nil || !s.synced {
		return 0
	}
	return now.Sub(s.staleSince)
}

func (w *watch) run(ctx context.Context) {
	c := w.c
	defer c.wg.Done()
	defer close(w.done)
	perm := fmt.Sprintf("service:read on %q", w.service)
	loop := consulx.Loop{
		Query: c.cfg.query, Wait: c.cfg.wait, Every: c.cfg.every, Burst: c.cfg.burst,
		MinBackoff: c.cfg.minBackoff, MaxBackoff: c.cfg.maxBackoff, Log: c.log.With("service", w.service),
	}
	var instances []Instance
	loop.Run(ctx, func(q *api.QueryOptions) (*api.QueryMeta, error) {
		entries, meta, err := c.client.Health().Connect(w.service, "", true, q)
		if err != nil {
			return nil, consulx.Explain(err, perm)
		}
		instances = toInstances(entries)
		return meta, nil
	}, w.fail, func(meta *api.QueryMeta) { w.succeed(instances, meta) })
}

func (w *watch) succeed(instances []Instance, meta *api.QueryMeta) {
	old := w.state.Load()
	st := &watchState{
		instances: instances,
		synced:    true,
		filtered:  meta.ResultsFilteredByACLs,
	}
	if old.synced && slices.EqualFunc(old.instances, instances, sameInstance) {
		st.instances = old.instances // keep the slice callers already hold
	}
	w.state.Store(st)
	if old.err != nil && old.synced {
		w.c.log.Info("consul watch recovered", "service", w.service, "stale_for", time.Since(old.staleSince).Round(time.Millisecond), "instances", len(instances))
	}
	if st.filtered && !old.filtered {
		w.c.log.Warn("consul filtered health results by ACLs: some instances may be missing; the token needs service:read and node:read",
			"service", w.service, "visible_instances", len(instances))
	}
	w.markReady()
}

func (w *watch) fail(err error) {
	old := w.state.Load()
	st := *old
	st.err = err
	if old.err == nil {
		st.staleSince = time.Now()
	}
	w.state.Store(&st)
	switch {
	case old.err == nil && old.synced:
		w.c.log.Warn("consul watch failing; using the last known instances", "service", w.service, "instances", len(old.instances), "err", err)
	case old.err == nil || old.err.Error() != err.Error():
		w.c.log.Warn("consul watch failing", "service", w.service, "synced", old.synced, "err", err)
	}
	w.markReady()
}

func (w *watch) markReady() {
	select {
	case <-w.ready:
	default:
		close(w.ready)
	}
}

// toInstances converts Consul's answer, sorted by ID then address. The
// address is the service's, or else its node's.
func toInstances(entries []*api.ServiceEntry) []Instance {
	out := make([]Instance, 0, len(entries))
	for _, e := range entries {
		if e == nil || e.Service == nil || e.Service.Port <= 0 {
			continue
		}
		host := e.Service.Address
		if host == "" && e.Node != nil {
			host = e.Node.Address
		}
		if host == "" {
			continue
		}
		out = append(out, Instance{
			ID:      e.Service.ID,
			Address: net.JoinHostPort(host, strconv.Itoa(e.Service.Port)),
			Meta:    e.Service.Meta,
		})
	}
	slices.SortFunc(out, func(a, b Instance) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Address, b.Address))
	})
	return out
}

func sameInstance(a, b Instance) bool {
	if a.ID != b.ID || a.Address != b.Address || len(a.Meta) != len(b.Meta) {
		return false
	}
	for k, v := range a.Meta {
		if bv, ok := b.Meta[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
