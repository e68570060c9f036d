package obs

import "log/slog"

// Option configures Setup.
type Option func(*config)

type config struct {
	endpoint string
	logger   *slog.Logger
	getenv   func(string) string
}

// WithOTLPEndpoint sets the OTLP/HTTP collector's base URL
// (http://127.0.0.1:4318; traces go to its /v1/traces), overriding
// OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT. A URL
// with scheme http is used without TLS.
func WithOTLPEndpoint(url string) Option {
	return func(c *config) { c.endpoint = url }
}

// WithLogger sets where Setup says how traces are exported (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithGetenv sets how Setup reads the environment (default os.Getenv), so
// that a program running several services, or a test, can give each its own.
func WithGetenv(getenv func(string) string) Option {
	return func(c *config) { c.getenv = getenv }
}
