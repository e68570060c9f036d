package pgstore

import (
	"crypto/tls"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// Option configures a [Store].
type Option func(*config)

type config struct {
	ownerRole    string
	maxConns     int32
	pollInterval time.Duration
	logger       *slog.Logger
	tls          *tls.Config
	tracer       trace.TracerProvider
}

func defaults() config {
	return config{
		maxConns:     10,
		pollInterval: 2 * time.Second,
		logger:       slog.Default(),
		tracer:       otel.GetTracerProvider(),
	}
}

// WithOwnerRole makes the tables belong to role: the schema is created
// after SET ROLE role. With dynamic credentials each login is a
// short-lived user that is a member of role; objects it created itself
// would keep it from being dropped when its lease ends.
func WithOwnerRole(role string) Option {
	return func(c *config) { c.ownerRole = role }
}

// WithMaxConns bounds the pool; the default is 10.
func WithMaxConns(n int32) Option {
	return func(c *config) {
		if n > 0 {
			c.maxConns = n
		}
	}
}

// WithPollInterval sets how often a follower looks for new records when
// no notification came (records written by other programs, a missed
// notification); the default is 2 s.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.pollInterval = d
		}
	}
}

// WithLogger sets where the store logs; the default is [slog.Default].
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithTLSConfig sets the TLS configuration of every connection, in place of
// the connection string's sslmode and file settings: the server's CA
// (RootCAs) and, for certificate authentication, the client's certificate,
// all from memory. Without ServerName the host is verified. No connection
// falls back to plain TCP.
func WithTLSConfig(c *tls.Config) Option {
	return func(cfg *config) { cfg.tls = c }
}

// WithTracerProvider sets where the spans of queries go (one per query run
// for a traced request); the default is OpenTelemetry's global provider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tracer = tp
		}
	}
}
