package certs

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// Option configures a Rotator.
type Option func(*config)

type config struct {
	logger           *slog.Logger
	meterProvider    metric.MeterProvider
	minBackoff       time.Duration
	maxBackoff       time.Duration
	rootChangeWindow time.Duration
}

func newConfig(opts []Option) config {
	c := config{
		minBackoff:       time.Second,
		maxBackoff:       time.Minute,
		rootChangeWindow: 30 * time.Second,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	return c
}

// WithLogger sets the logger for rotations and failures (default
// slog.Default()). Key material is never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithMeterProvider sets where metrics go (default otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

// WithBackoff bounds the jittered exponential backoff between failed
// issuances (default 1s to 1min). Whatever the bounds, a retry is scheduled
// before the current SVID expires while it is still valid. Values that are
// not positive leave the default; a maxWait below minWait is raised to it.
func WithBackoff(minWait, maxWait time.Duration) Option {
	return func(c *config) {
		if minWait > 0 {
			c.minBackoff = minWait
		}
		if maxWait > 0 {
			c.maxBackoff = maxWait
		}
		c.maxBackoff = max(c.maxBackoff, c.minBackoff)
	}
}

// WithRootChangeWindow sets how soon the SVID is re-issued after the
// issuer's roots change (see BundleWatcher): at a uniformly random moment
// within d (default 30s, as Consul does). DevCA.Source uses 1s.
func WithRootChangeWindow(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.rootChangeWindow = d
		}
	}
}
