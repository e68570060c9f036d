package consul

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/ztnlabs/ztn/discovery"
)

// IntentionsOption configures [NewIntentions].
type IntentionsOption interface {
	applyIntentions(*intentionsConfig)
}

// CatalogOption configures [NewCatalog].
type CatalogOption interface {
	applyCatalog(*catalogConfig)
}

// Option configures both [NewIntentions] and [NewCatalog].
type Option interface {
	IntentionsOption
	CatalogOption
}

// common is what both constructors take.
type common struct {
	logger        *slog.Logger
	meterProvider metric.MeterProvider
}

func (c *common) setDefaults() {
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
}

type intentionsConfig struct {
	common
	defaultAllow bool
	maxStaleness time.Duration
}

type catalogConfig struct {
	common
	idle            time.Duration
	ttl             time.Duration
	deregisterAfter time.Duration
	balancer        *discovery.Balancer
}

type commonOption func(*common)

func (o commonOption) applyIntentions(c *intentionsConfig) { o(&c.common) }
func (o commonOption) applyCatalog(c *catalogConfig)       { o(&c.common) }

type intentionsOption func(*intentionsConfig)

func (o intentionsOption) applyIntentions(c *intentionsConfig) { o(c) }

type catalogOption func(*catalogConfig)

func (o catalogOption) applyCatalog(c *catalogConfig) { o(c) }

// WithLogger sets the logger (default slog.Default()). Failures and
// recoveries of the sync with Consul are logged at Warn and Info, routine
// events (registrations, syncs) at Debug.
func WithLogger(l *slog.Logger) Option {
	return commonOption(func(c *common) { c.logger = l })
}

// WithMeterProvider sets the OpenTelemetry meter provider of the gauges
// (default: otel's global provider): ztn.authz.staleness for [Intentions];
// ztn.discovery.staleness and ztn.discovery.instances for a [Catalog].
func WithMeterProvider(p metric.MeterProvider) Option {
	return commonOption(func(c *common) { c.meterProvider = p })
}

// WithDefaultAllow allows what no intention decides, as Consul does with
// ACLs disabled or acl.default_policy = "allow" (and
// default_intention_policy unset). ztn does not read Consul's default (no
// endpoint exposes default_intention_policy): configure it to match. The
// default is deny.
func WithDefaultAllow() IntentionsOption {
	return intentionsOption(func(c *intentionsConfig) { c.defaultAllow = true })
}

// WithMaxStaleness fails closed when Consul has not confirmed the
// intentions for d: every request is then denied (and ztnet closes open
// connections) until a sync succeeds again. The default, 0, keeps the last
// known intentions in force however old.
func WithMaxStaleness(d time.Duration) IntentionsOption {
	return intentionsOption(func(c *intentionsConfig) { c.maxStaleness = d })
}

// WithIdleTimeout stops the watch of a service that has not been resolved
// in d (default 10m); 0 keeps watches until Close.
func WithIdleTimeout(d time.Duration) CatalogOption {
	return catalogOption(func(c *catalogConfig) { c.idle = d })
}

// WithCheckTTL sets the TTL of registered instances' health checks
// (default 10s, at least 1s). The check is updated every third of it.
func WithCheckTTL(d time.Duration) CatalogOption {
	return catalogOption(func(c *catalogConfig) { c.ttl = d })
}

// WithDeregisterAfter sets how long a registered instance's check may stay
// critical (its process crashed, say) before Consul removes the instance
// (default 1m; Consul does not go below 1m).
func WithDeregisterAfter(d time.Duration) CatalogOption {
	return catalogOption(func(c *catalogConfig) { c.deregisterAfter = d })
}

// WithBalancer sets the [discovery.Balancer] behind [Catalog.Pick] and
// [Catalog.Report] (default: a new one with the default ejection), for
// instance to tune its ejection or to read [discovery.Balancer.Ejected].
func WithBalancer(b *discovery.Balancer) CatalogOption {
	return catalogOption(func(c *catalogConfig) { c.balancer = b })
}
