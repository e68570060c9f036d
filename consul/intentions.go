package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/internal/consulx"
	"github.com/ztnlabs/ztn/internal/notify"
)

// Intentions is an [authz.Authorizer] for one destination service whose
// intentions come from Consul and are evaluated in memory, as an
// [authz.Policy]'s are.
//
// A background loop keeps them in sync with a blocking query on
// /v1/connect/intentions/match?by=destination&name=<destination>, which
// returns, in precedence order, every intention that applies to the
// destination (its own, and wildcard ones). Authorize never touches the
// network.
//
// Before the first successful sync every request is denied. When Consul
// cannot be reached, or answers with errors, the last intentions it gave
// stay in force (see [Intentions.Staleness], [Intentions.Err], and the
// ztn.authz.staleness gauge) unless [WithMaxStaleness] makes them expire.
// Every change closes the [Intentions.Changed] channel, so ztnet re-checks
// its open connections.
//
// What ztn cannot enforce fails closed: a source whose intention carries a
// JWT requirement (on the entry, the source or a permission), or that ztn's
// model rejects, is denied (its [authz.Intention]'s Description says why).
// Sources of a cluster peer (SourcePeer) keep their peer: they match only
// callers of that peer, which ztnet names after their federated trust
// domain, never local callers. Sameness-group sources are not supported: a
// sync that returns one fails.
//
// Requests for any other destination than the one given to [NewIntentions]
// are denied, as are all requests before the first sync, after the maximum
// staleness and after Close: their [authz.Decision]'s Kind is
// [authz.KindNotSynced].
type Intentions struct {
	client *api.Client
	dest   authz.Selector // normalized
	name   string         // the destination as /match takes it
	cfg    Config
	opts   intentionsConfig
	log    *slog.Logger
	policy *authz.Policy
	// unsynced is never set: its decisions deny with KindNotSynced.
	unsynced authz.Policy
	// entries are the converted intentions in force; only the sync loop
	// uses them.
	entries []authz.ConfigEntry

	changed notify.Broadcast
	expired atomic.Bool // the intentions are older than the maximum staleness, or Close was called
	state   atomic.Pointer[syncState]
	synced  chan struct{} // closed at the first successful sync

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	expiry    *time.Timer
	closed    bool
	gauge     metric.Registration
	loggedACL bool
}

var _ authz.Authorizer = (*Intentions)(nil)

// syncState is an immutable snapshot of the sync loop's state.
type syncState struct {
	freshness
	index uint64 // the index of the intentions in force
}

// NewIntentions starts keeping the intentions of destination in sync from
// the Consul cfg reaches. destination is a service name, or
// "namespace/name" or "partition/namespace/name" (Consul Enterprise). Close
// the Intentions when done.
func NewIntentions(cfg Config, destination string, opts ...IntentionsOption) (*Intentions, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("consul: intentions: %w", err)
	}
	dest, err := parseDestination(destination)
	if err != nil {
		return nil, fmt.Errorf("consul: intentions: destination %q: %w", destination, err)
	}
	var o intentionsConfig
	for _, opt := range opts {
		opt.applyIntentions(&o)
	}
	o.setDefaults()
	var popts []authz.Option
	if o.defaultAllow {
		popts = append(popts, authz.WithDefaultAllow())
	}
	c := &Intentions{
		client: cfg.Client,
		dest:   dest,
		name:   destination,
		cfg:    cfg,
		opts:   o,
		log:    o.logger.With("component", "ztn.consul.intentions", "destination", dest.String()),
		policy: authz.NewPolicy(popts...),
		synced: make(chan struct{}),
		done:   make(chan struct{}),
	}
	c.state.Store(&syncState{})
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.registerGauge()
	go c.run()
	return c, nil
}

// parseDestination parses "[[partition/]namespace/]name".
func parseDestination(s string) (authz.Selector, error) {
	parts := strings.Split(s, "/")
	var svc authz.Selector
	switch len(parts) {
	case 1:
		svc.Name = parts[0]
	case 2:
		svc.Namespace, svc.Name = parts[0], parts[1]
	case 3:
		svc.Partition, svc.Namespace, svc.Name = parts[0], parts[1], parts[2]
	default:
		return authz.Selector{}, errors.New(`want "name", "namespace/name" or "partition/namespace/name"`)
	}
	for _, p := range parts {
		switch {
		case p == "":
			return authz.Selector{}, errors.New("empty part")
		case strings.Contains(p, authz.Wildcard):
			return authz.Selector{}, errors.New("a destination to authorize cannot be a wildcard")
		}
	}
	svc.Partition = orDefault(svc.Partition, ztn.DefaultPartition)
	svc.Namespace = orDefault(svc.Namespace, ztn.DefaultNamespace)
	return svc, nil
}

// Authorize decides req from the intentions in force; see [Intentions].
func (c *Intentions) Authorize(req authz.Request) authz.Decision {
	if c.expired.Load() || !sameService(req.Destination, c.dest) {
		return c.unsynced.Authorize(req)
	}
	return c.policy.Authorize(req)
}

// sameService compares a request's destination with a normalized one.
func sameService(s ztn.ServiceID, norm authz.Selector) bool {
	return s.Name == norm.Name &&
		(s.Namespace == norm.Namespace || s.Namespace == "" && norm.Namespace == ztn.DefaultNamespace) &&
		(s.Partition == norm.Partition || s.Partition == "" && norm.Partition == ztn.DefaultPartition)
}

// Changed returns a channel closed at the next change of the intentions in
// force (including failing closed and recovering).
func (c *Intentions) Changed() <-chan struct{} { return c.changed.Changed() }

// WaitSynced waits for the first successful sync; on timeout its error
// includes the last error from Consul.
func (c *Intentions) WaitSynced(ctx context.Context) error {
	select {
	case <-c.synced:
		return nil
	case <-ctx.Done():
		if err := c.state.Load().err; err != nil {
			return fmt.Errorf("consul: intentions %s: not synced: %w (last error: %v)", c.dest, ctx.Err(), err)
		}
		return fmt.Errorf("consul: intentions %s: not synced: %w", c.dest, ctx.Err())
	}
}

// Ready reports whether the intentions from Consul can decide: nil once they
// have been synced and while they are not failing closed; otherwise an error
// that says why everything is denied (not synced yet, older than
// [WithMaxStaleness], or closed), with Consul's last error.
func (c *Intentions) Ready() error {
	if c.closedNow() {
		return fmt.Errorf("consul: intentions %s: closed: denying everything", c.dest)
	}
	st := c.state.Load()
	var why string
	switch {
	case c.expired.Load():
		why = fmt.Sprintf("intentions unconfirmed for %s, over the maximum staleness %s", st.staleness(time.Now()).Round(time.Millisecond), c.opts.maxStaleness)
	case !st.synced:
		why = "not synced yet"
	default:
		return nil
	}
	if st.err != nil {
		return fmt.Errorf("consul: intentions %s: %s: denying everything (last error: %w)", c.dest, why, st.err)
	}
	return fmt.Errorf("consul: intentions %s: %s: denying everything", c.dest, why)
}

func (c *Intentions) closedNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Err returns the error of the last sync attempt, nil if it succeeded.
func (c *Intentions) Err() error {
	if err := c.state.Load().err; err != nil {
		return fmt.Errorf("consul: intentions %s: %w", c.dest, err)
	}
	return nil
}

// Staleness reports for how long the intentions in force have gone
// unconfirmed because Consul could not be reached or answered with errors:
// 0 while the sync loop is healthy or before the first sync.
func (c *Intentions) Staleness() time.Duration {
	return c.state.Load().staleness(time.Now())
}

// Intentions returns the intentions in force, in evaluation order.
func (c *Intentions) Intentions() []authz.Intention { return c.policy.Intentions() }

// Close stops the sync loop. Every request is denied afterwards.
func (c *Intentions) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.mu.Unlock()
	c.cancel()
	<-c.done
	c.expired.Store(true)
	c.changed.Notify()
	if err := unregister(c.gauge); err != nil {
		return fmt.Errorf("consul: intentions %s: close: %w", c.dest, err)
	}
	return nil
}

func (c *Intentions) registerGauge() {
	m, g, err := stalenessGauge(c.opts.meterProvider, "ztn.authz.staleness",
		"How long the intentions in force have gone unconfirmed by Consul (0 while in sync).")
	if err == nil {
		attrs := metric.WithAttributes(attribute.String("service", c.dest.String()))
		c.gauge, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			o.ObserveFloat64(g, c.Staleness().Seconds(), attrs)
			return nil
		}, g)
	}
	if err != nil {
		c.log.Warn("ztn.authz.staleness gauge unavailable", "err", err)
	}
}

func (c *Intentions) run() {
	defer close(c.done)
	perm := fmt.Sprintf("intentions:read on %q", c.name)
	c.cfg.loop(c.log).Run(c.ctx, func(q *api.QueryOptions) (*api.QueryMeta, error) {
		res, meta, err := c.client.Connect().IntentionMatch(&api.IntentionMatch{
			By:    api.IntentionMatchDestination,
			Names: []string{c.name},
		}, q)
		if err != nil {
			return nil, consulx.Explain(err, perm)
		}
		if st := c.state.Load(); !st.synced || st.err != nil || meta.LastIndex != st.index {
			// A new answer (a timeout repeats the old one), or the first
			// after errors (Consul may have restarted with other state).
			if err := c.install(q.Context(), res[c.name], meta); err != nil {
				return nil, err
			}
		}
		return meta, nil
	}, c.fail, c.succeed)
}

// install converts the intentions /match returned and puts them in force.
func (c *Intentions) install(ctx context.Context, ixns []*api.Intention, meta *api.QueryMeta) error {
	entries, warnings, err := c.convert(ctx, ixns)
	if err != nil {
		return err
	}
	old := c.state.Load()
	st := *old
	st.synced, st.index = true, meta.LastIndex
	if old.synced && reflect.DeepEqual(entries, c.entries) {
		// Same intentions at a new index (other entries changed): nothing
		// to re-check.
		c.state.Store(&st)
		return nil
	}
	if err := c.policy.Set(entries...); err != nil {
		return fmt.Errorf("intentions from Consul rejected: %w", err)
	}
	c.entries = entries
	c.state.Store(&st)
	for _, w := range warnings {
		c.log.Warn("consul intention cannot be enforced as written", "problem", w)
	}
	c.log.Debug("intentions synced from Consul", "index", meta.LastIndex, "intentions", len(ixns))
	c.changed.Notify()
	if !old.synced {
		close(c.synced) // after Notify: a Changed taken after WaitSynced is for the next change
	}
	c.checkDefault(meta)
	return nil
}

// checkDefault logs once when Consul's default (informative only) differs
// from the configured one.
func (c *Intentions) checkDefault(meta *api.QueryMeta) {
	consulAllow := meta.DefaultACLPolicy == "allow"
	if meta.DefaultACLPolicy == "" || consulAllow == c.opts.defaultAllow {
		return
	}
	c.mu.Lock()
	logged := c.loggedACL
	c.loggedACL = true
	c.mu.Unlock()
	if !logged {
		c.log.Info("Consul's default ACL policy differs from ztn's configured default for unmatched traffic",
			"consul_default_acl_policy", meta.DefaultACLPolicy, "ztn_default", noun(c.opts.defaultAllow))
	}
}

func (c *Intentions) succeed(meta *api.QueryMeta) {
	old := c.state.Load()
	st := *old
	st.staleSince, st.err = time.Time{}, nil
	c.state.Store(&st)
	if old.err != nil && old.synced {
		c.log.Info("consul intentions sync recovered", "stale_for", time.Since(old.staleSince).Round(time.Millisecond))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expiry != nil {
		c.expiry.Stop()
		c.expiry = nil
	}
	if c.expired.Load() && !c.closed {
		c.expired.Store(false)
		c.log.Info("intentions fresh again: no longer failing closed")
		c.changed.Notify()
	}
}

func (c *Intentions) fail(err error) {
	old := c.state.Load()
	st := *old
	st.freshness = old.failed(err, time.Now())
	c.state.Store(&st)
	switch {
	case !old.synced && (old.err == nil || old.err.Error() != err.Error()):
		c.log.Warn("consul intentions sync failing; denying everything until the first sync", "err", err)
	case old.synced && old.err == nil:
		c.log.Warn("consul intentions sync failing; keeping the last known intentions", "err", err)
	case old.synced && old.err.Error() != err.Error():
		c.log.Warn("consul intentions sync failing", "err", err, "stale_for", time.Since(st.staleSince).Round(time.Millisecond))
	}
	if c.opts.maxStaleness <= 0 || !old.synced {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expiry == nil && !c.closed && !c.expired.Load() {
		c.expiry = time.AfterFunc(time.Until(st.staleSince.Add(c.opts.maxStaleness)), c.expire)
	}
}

// expire fails closed if the intentions are still unconfirmed.
func (c *Intentions) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expiry = nil
	st := c.state.Load()
	if c.closed || c.expired.Load() || st.err == nil || time.Since(st.staleSince) < c.opts.maxStaleness {
		return
	}
	c.expired.Store(true)
	c.log.Error("intentions older than the maximum staleness: denying everything until Consul answers",
		"max_staleness", c.opts.maxStaleness, "stale_for", time.Since(st.staleSince).Round(time.Millisecond), "err", st.err)
	c.changed.Notify()
}
