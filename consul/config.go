package consul

import (
	"errors"
	"log/slog"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ztnlabs/ztn/internal/consulx"
)

// Config is how ztn reaches Consul: the client, the options of every
// request, and the pacing of the blocking queries that keep intentions and
// instances fresh. [NewIntentions] and [NewCatalog] take the same Config, so
// a process configures Consul access once. Only Client is required; a zero
// field takes its default.
type Config struct {
	// Client talks to the Consul agent. api.NewClient(api.DefaultConfig())
	// reads CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_CACERT... from the
	// environment.
	Client *api.Client

	// Query holds the options of every request: ACL Token, Datacenter,
	// AllowStale, UseCache... (WaitIndex and WaitTime are the blocking
	// queries'). The Client's own defaults apply otherwise. The token needs
	// intentions:read on the destinations of [Intentions]; service:read on
	// the services a [Catalog] resolves and node:read on their nodes; and
	// service:write on the services it registers.
	Query api.QueryOptions

	// WaitTime is how long a blocking query may wait for a change
	// (default 5m, Consul's default; Consul caps it at 10m).
	WaitTime time.Duration

	// RateEvery and RateBurst limit each blocking-query loop (the
	// intentions of one destination, the instances of one service) to one
	// request per RateEvery on average, in bursts of up to RateBurst
	// (default: every 100ms, burst 2), so that something that changes
	// constantly does not make its loop spin.
	RateEvery time.Duration
	RateBurst int

	// MinBackoff and MaxBackoff bound the jittered exponential backoff
	// between failed requests (default: 200ms doubling up to 15s).
	MinBackoff, MaxBackoff time.Duration
}

// Defaults of Config.
const (
	defaultWaitTime   = 5 * time.Minute
	defaultRateEvery  = 100 * time.Millisecond
	defaultRateBurst  = 2
	defaultMinBackoff = 200 * time.Millisecond
	defaultMaxBackoff = 15 * time.Second
)

// withDefaults checks c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Client == nil {
		return c, errors.New("nil Config.Client")
	}
	if c.WaitTime <= 0 {
		c.WaitTime = defaultWaitTime
	}
	if c.RateEvery <= 0 {
		c.RateEvery = defaultRateEvery
	}
	if c.RateBurst <= 0 {
		c.RateBurst = defaultRateBurst
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = defaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = defaultMaxBackoff
	}
	c.MinBackoff = max(c.MinBackoff, time.Millisecond)
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	return c, nil
}

// loop returns a blocking-query loop paced by c (with its defaults).
func (c Config) loop(log *slog.Logger) consulx.Loop {
	return consulx.Loop{
		Query: c.Query, Wait: c.WaitTime, Every: c.RateEvery, Burst: c.RateBurst,
		MinBackoff: c.MinBackoff, MaxBackoff: c.MaxBackoff, Log: log,
	}
}

// freshness is what a blocking-query loop knows of the data it keeps:
// whether Consul has answered, and since when it has been failing.
type freshness struct {
	synced bool // Consul has answered successfully at least once
	// staleSince is when the current run of failed requests began: the
	// data were current until then, as far as ztn can tell (a connection
	// that dies silently is noticed within the wait time + 15s).
	staleSince time.Time
	err        error // the last request's error; nil after a success
}

// staleness is for how long the data have gone unconfirmed at now: 0 while
// the loop is healthy or before Consul's first answer.
func (f freshness) staleness(now time.Time) time.Duration {
	if f.err == nil || !f.synced {
		return 0
	}
	return now.Sub(f.staleSince)
}

// failed returns f after a request that failed with err at now.
func (f freshness) failed(err error, now time.Time) freshness {
	if f.err == nil {
		f.staleSince = now
	}
	f.err = err
	return f
}
