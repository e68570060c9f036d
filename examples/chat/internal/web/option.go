package web

import (
	"log/slog"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Option configures a [Server].
type Option func(*config)

type config struct {
	logger        *slog.Logger
	bcryptCost    int
	tokenLifetime time.Duration
	now           func() time.Time
	keepAlive     time.Duration
	streamBuffer  int
}

func defaults() config {
	return config{
		logger:        slog.Default(),
		bcryptCost:    bcrypt.DefaultCost,
		tokenLifetime: 24 * time.Hour,
		now:           time.Now,
		keepAlive:     25 * time.Second,
		streamBuffer:  64,
	}
}

// WithLogger sets where the server logs failed requests and store
// follow errors; the default is [slog.Default].
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithBcryptCost sets the bcrypt cost of new password hashes; the default
// is [bcrypt.DefaultCost] (10, as feathers). Tests use [bcrypt.MinCost].
func WithBcryptCost(cost int) Option {
	return func(c *config) { c.bcryptCost = cost }
}

// WithTokenLifetime sets how long an access token is valid; the default
// is a day, as feathers-chat's "expiresIn": "1d".
func WithTokenLifetime(d time.Duration) Option {
	return func(c *config) { c.tokenLifetime = d }
}

// WithClock sets the clock that stamps messages (createdAt) and issues and
// checks tokens; the default is [time.Now].
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// WithKeepAlive sets how often an idle event stream gets a comment line,
// so proxies keep it open; the default is 25 s.
func WithKeepAlive(d time.Duration) Option {
	return func(c *config) { c.keepAlive = d }
}
