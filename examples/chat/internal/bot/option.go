package bot

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// Option configures a [Bot].
type Option func(*config)

type config struct {
	logger      *slog.Logger
	timeout     time.Duration
	concurrency int
	now         func() time.Time
	started     func()
	tracer      trace.TracerProvider
}

func defaults() config {
	return config{
		logger:      slog.Default(),
		timeout:     10 * time.Second,
		concurrency: 8,
		now:         time.Now,
		started:     func() {},
		tracer:      otel.GetTracerProvider(),
	}
}

// WithLogger sets where the bot logs; the default is [slog.Default].
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithTracerProvider sets where the spans of the bot's answers go; the
// default is OpenTelemetry's global provider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tracer = tp
		}
	}
}

// WithTimeout bounds each question to a getter; the default is 10 s.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithConcurrency sets how many answers [Bot.Run] works out at once; the
// default is 8.
func WithConcurrency(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.concurrency = n
		}
	}
}
