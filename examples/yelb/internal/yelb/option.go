package yelb

import (
	"io"
	"log/slog"
	"time"
)

// Option configures [NewAppServer], [NewUI] and [NewAPIProxy].
type Option func(*config)

type config struct {
	logger  *slog.Logger
	timeout time.Duration
}

func newConfig(opts []Option) config {
	c := config{logger: slog.New(slog.NewTextHandler(io.Discard, nil)), timeout: 5 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithLogger sets where errors are logged (the answers to clients say only
// which component failed); default: nowhere.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithStoreTimeout bounds each call of the app server to its stores
// (default 5s): a store that hangs answers 500 after it, as one that is down
// does at once.
func WithStoreTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}
