package consul

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

	"github.com/hashicorp/consul/api"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/consulx"
	"github.com/ztnlabs/ztn/internal/notify"
)

// Catalog is a [discovery.Resolver], [discovery.Registrar],
// [discovery.Picker] and [discovery.Watcher] backed by Consul's catalog.
//
// Resolve answers from a cache. The first Resolve of a service starts a
// background watch of its healthy Connect instances (Connect-native services
// and sidecar proxies, /v1/health/connect/<service>?passing, as blocking
// queries) and waits for Consul's first answer; later calls read the cache
// and make no request. A watch unused for the idle timeout
// ([WithIdleTimeout]) stops. When Consul cannot be reached, or answers with
// errors, the last instances it gave stay in use (see [Catalog.Staleness])
// while the watch retries with backoff. [Catalog.Changed] tells a client
// (grpcztn's resolver) as soon as a watch sees the instances change.
//
// Register registers a Connect-native instance with a TTL check that a
// background loop keeps passing while [discovery.Registration].Healthy says
// the instance can serve, and turns critical, with the reason as its output,
// when it cannot. If the process dies the check lapses and Consul removes
// the instance after the deregister-critical delay ([WithDeregisterAfter]).
//
// Pick and Report balance dials across instances with a
// [discovery.Balancer] ([WithBalancer]).
//
// Close stops every watch and heartbeat. It does not deregister: the
// functions Register returns do (ztnet listeners call them on Close).
type Catalog struct {
	client   *api.Client
	cfg      Config
	opts     catalogConfig
	log      *slog.Logger
	balancer *discovery.Balancer

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	watches map[string]*watch

	gauge metric.Registration
}

var (
	_ discovery.Resolver  = (*Catalog)(nil)
	_ discovery.Registrar = (*Catalog)(nil)
	_ discovery.Picker    = (*Catalog)(nil)
	_ discovery.Watcher   = (*Catalog)(nil)
)

// NewCatalog returns a Catalog that reads and writes the catalog of the
// Consul cfg reaches. Close it when done.
func NewCatalog(cfg Config, opts ...CatalogOption) (*Catalog, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("consul: catalog: %w", err)
	}
	o := catalogConfig{
		idle:            10 * time.Minute,
		ttl:             10 * time.Second,
		deregisterAfter: time.Minute,
	}
	for _, opt := range opts {
		opt.applyCatalog(&o)
	}
	o.setDefaults()
	if o.balancer == nil {
		o.balancer = discovery.NewBalancer()
	}
	o.ttl = max(o.ttl, time.Second)
	c := &Catalog{
		client:   cfg.Client,
		cfg:      cfg,
		opts:     o,
		log:      o.logger.With("component", "ztn.consul.catalog"),
		balancer: o.balancer,
		watches:  make(map[string]*watch),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.registerGauge()
	if o.idle > 0 {
		c.wg.Add(1)
		go c.reapIdle()
	}
	return c, nil
}

// Close stops every watch and registration heartbeat and waits for them. It
// does not deregister instances. Resolve and Register fail afterwards.
func (c *Catalog) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	if err := unregister(c.gauge); err != nil {
		return fmt.Errorf("consul: catalog: close: %w", err)
	}
	return nil
}

// Pick orders instances for a dial (see [discovery.Balancer]).
func (c *Catalog) Pick(service string, instances []discovery.Instance) []discovery.Instance {
	return c.balancer.Pick(service, instances)
}

// Report records the outcome of a dial (see [discovery.Balancer]).
func (c *Catalog) Report(service string, in discovery.Instance, err error) {
	c.balancer.Report(service, in, err)
}

// Resolve returns the healthy instances of service, from the cache once its
// watch has had Consul's first answer. The first call waits for that answer
// (bounded by ctx) and returns Consul's error if that answer is one. While
// Consul is unreachable the last instances it gave are returned. An unknown
// service has no instances (and no error). The returned slice must not be
// modified.
func (c *Catalog) Resolve(ctx context.Context, service string) ([]discovery.Instance, error) {
	if service == "" {
		return nil, errors.New("consul: resolve: empty service name")
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
			return nil, fmt.Errorf("consul: resolve %s: %w", service, errClosed)
		case <-ctx.Done():
			return nil, fmt.Errorf("consul: resolve %s: waiting for Consul's first answer: %w", service, ctx.Err())
		}
		st = w.state.Load()
	}
	switch {
	case !st.synced:
		return nil, fmt.Errorf("consul: resolve %s: %w", service, st.err)
	case len(st.instances) == 0 && st.filtered:
		return nil, fmt.Errorf("consul: resolve %s: Consul filtered the answer by ACLs: the token needs service:read on %q and node:read on its nodes", service, service)
	}
	return st.instances, nil
}

var errClosed = errors.New("catalog closed")

// Staleness reports for how long the cached instances of service have gone
// unconfirmed because Consul could not be reached or answered with errors:
// 0 while its watch is healthy (or when there is no watch).
func (c *Catalog) Staleness(service string) time.Duration {
	c.mu.Lock()
	w := c.watches[service]
	c.mu.Unlock()
	if w == nil {
		return 0
	}
	return w.state.Load().staleness(time.Now())
}

// Changed returns a channel closed when the instances of service may have
// changed: when its watch gets an answer from Consul that differs from the
// last, or an error, and when the watch stops (unused for the idle timeout,
// or Close). Take it before Resolve and resolve again once it is closed.
// Like Resolve, it starts the watch if needed and marks it used. After
// Close it returns nil.
func (c *Catalog) Changed(service string) <-chan struct{} {
	if service == "" {
		return nil
	}
	w, err := c.watchFor(service)
	if err != nil {
		return nil
	}
	ch := w.changed.Changed()
	select {
	case <-w.done: // stopped, maybe before ch was taken: resolve again now
		closed := make(chan struct{})
		close(closed)
		return closed
	default:
		return ch
	}
}

// watchFor returns the watch of service, started if needed, and marks it
// used.
func (c *Catalog) watchFor(service string) (*watch, error) {
	now := time.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("consul: resolve %s: %w", service, errClosed)
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
func (c *Catalog) reapIdle() {
	defer c.wg.Done()
	t := time.NewTicker(max(c.opts.idle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		cutoff := time.Now().Add(-c.opts.idle).UnixNano()
		c.mu.Lock()
		for name, w := range c.watches {
			if w.lastUsed.Load() < cutoff {
				delete(c.watches, name)
				w.cancel()
				c.log.Debug("consul watch stopped: unused", "service", name, "idle", c.opts.idle)
			}
		}
		c.mu.Unlock()
	}
}

// watching returns the services being watched, for tests and metrics.
func (c *Catalog) watching() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for name := range c.watches {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func (c *Catalog) registerGauge() {
	m, stale, err := stalenessGauge(c.opts.meterProvider, "ztn.discovery.staleness",
		"How long the cached instances of a service have gone unconfirmed by Consul (0 while its watch is healthy).")
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
	c        *Catalog
	service  string
	cancel   context.CancelFunc
	ready    chan struct{} // closed at Consul's first answer, good or bad
	done     chan struct{} // closed when run returns
	lastUsed atomic.Int64  // unix nanoseconds of the last Resolve or Changed
	state    atomic.Pointer[watchState]
	changed  notify.Broadcast // on a new answer or error, and when run returns
}

// watchState is an immutable snapshot of a watch.
type watchState struct {
	freshness
	instances []discovery.Instance
	filtered  bool // Consul left results out because of ACLs
}

func (w *watch) run(ctx context.Context) {
	c := w.c
	defer c.wg.Done()
	defer w.changed.Notify() // the watch is gone: a waiter resolves again
	defer close(w.done)
	perm := fmt.Sprintf("service:read on %q", w.service)
	loop := c.cfg.loop(c.log.With("service", w.service))
	var instances []discovery.Instance
	loop.Run(ctx, func(q *api.QueryOptions) (*api.QueryMeta, error) {
		entries, meta, err := c.client.Health().Connect(w.service, "", true, q)
		if err != nil {
			return nil, consulx.Explain(err, perm)
		}
		instances = toInstances(entries)
		return meta, nil
	}, w.fail, func(meta *api.QueryMeta) { w.succeed(instances, meta) })
}

func (w *watch) succeed(instances []discovery.Instance, meta *api.QueryMeta) {
	old := w.state.Load()
	st := &watchState{
		freshness: freshness{synced: true},
		instances: instances,
		filtered:  meta.ResultsFilteredByACLs,
	}
	same := old.synced && slices.EqualFunc(old.instances, instances, sameInstance)
	if same {
		st.instances = old.instances // keep the slice callers already hold
	}
	w.state.Store(st)
	if !same || old.err != nil || st.filtered != old.filtered {
		w.changed.Notify()
	}
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
	st.freshness = old.failed(err, time.Now())
	w.state.Store(&st)
	if old.err == nil || !old.synced {
		w.changed.Notify() // Resolve's answer may be the error
	}
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
func toInstances(entries []*api.ServiceEntry) []discovery.Instance {
	out := make([]discovery.Instance, 0, len(entries))
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
		out = append(out, discovery.Instance{
			ID:      e.Service.ID,
			Address: net.JoinHostPort(host, strconv.Itoa(e.Service.Port)),
			Meta:    e.Service.Meta,
		})
	}
	slices.SortFunc(out, func(a, b discovery.Instance) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Address, b.Address))
	})
	return out
}

func sameInstance(a, b discovery.Instance) bool {
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
