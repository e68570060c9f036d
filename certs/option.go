package certs

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/ztnlabs/ztn/internal/certsx"
)

// Option configures a [Rotator] ([NewRotator], [DevCA.Source]) and the
// other sources that take options: [NewFiles] and the backends'
// constructors (certs/vault, certs/consulca, certs/workloadapi). Sources
// that do not issue ([Files], certs/workloadapi) take only [WithLogger] and
// [WithMeterProvider]; the other options do not apply to them.
type Option func(*config)

// config is shared with the backends, which apply their options with
// certsx.NewConfig.
type config = certsx.Config

func newConfig(opts []Option) config { return certsx.NewConfig(opts) }

// WithLogger sets the logger for rotations and failures (default
// slog.Default()). Key material is never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.Logger = l }
}

// WithMeterProvider sets where metrics go (default otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.MeterProvider = mp }
}

// WithBackoff bounds the jittered exponential backoff between failed
// issuances (default 1s to 1min). Whatever the bounds, a retry is scheduled
// before the current SVID expires while it is still valid. Values that are
// not positive leave the default; a maxWait below minWait is raised to it.
func WithBackoff(minWait, maxWait time.Duration) Option {
	return func(c *config) {
		if minWait > 0 {
			c.MinBackoff = minWait
		}
		if maxWait > 0 {
			c.MaxBackoff = maxWait
		}
		c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	}
}

// WithRootChangeWindow sets how soon the SVID is re-issued after the
// issuer's roots change (see BundleWatcher): at a uniformly random moment
// within d (default 30s, as Consul does). DevCA.Source uses 1s.
func WithRootChangeWindow(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.RootChangeWindow = d
		}
	}
}

// DevCAOption configures NewDevCA.
type DevCAOption func(*devCAConfig)

type devCAConfig struct {
	nameConstraints bool
}

// WithoutNameConstraints makes roots without name constraints, like Consul's
// built-in CA: leaves of any trust domain signed with
// [DevCA.SignCertificate] then chain to the root, which is what a test of a
// verifier's own trust-domain check needs.
func WithoutNameConstraints() DevCAOption {
	return func(c *devCAConfig) { c.nameConstraints = false }
}
