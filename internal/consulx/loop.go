package consulx

import (
	"context"
	"log/slog"
	"time"

	"github.com/hashicorp/consul/api"
	"golang.org/x/time/rate"
)

// Loop is a blocking-query loop: one Consul read repeated until its context
// ends, each request blocking on the index of the last answer.
type Loop struct {
	Query      api.QueryOptions // the caller's options (token, datacenter...); WaitIndex and WaitTime are the loop's
	Wait       time.Duration    // how long a request may block
	Every      time.Duration    // at most one request per Every on average...
	Burst      int              // ...in bursts of up to Burst
	MinBackoff time.Duration    // the jittered backoff between failed requests
	MaxBackoff time.Duration
	Log        *slog.Logger // where an index that went backwards is noted
}

// Run calls read until ctx ends. read gets the query options to use (with
// the index to block on, the wait time, and a context that bounds the
// request by MaxBlockingWait) and returns the answer's metadata or an
// error. After an error Run calls fail, backs off and retries without
// blocking, so that the caller hears from Consul as soon as it answers
// again; after an answer it calls ok and blocks on the answer's index next
// (NextIndex). read, fail and ok run on Run's goroutine.
func (l Loop) Run(ctx context.Context, read func(q *api.QueryOptions) (*api.QueryMeta, error), fail func(error), ok func(*api.QueryMeta)) {
	lim := rate.NewLimiter(rate.Every(l.Every), max(l.Burst, 1))
	bo := Backoff{Min: l.MinBackoff, Max: l.MaxBackoff}
	var index uint64
	for {
		if err := lim.Wait(ctx); err != nil {
			return
		}
		q := l.Query
		q.WaitIndex, q.WaitTime = index, l.Wait
		rctx, cancel := context.WithTimeout(ctx, MaxBlockingWait(l.Wait))
		meta, err := read(q.WithContext(rctx))
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			fail(err)
			index = 0
			if !Sleep(ctx, bo.Next()) {
				return
			}
			continue
		}
		bo.Reset()
		if meta.LastIndex < index && l.Log != nil {
			l.Log.Info("consul index went backwards; starting over", "from", index, "to", meta.LastIndex)
		}
		index = NextIndex(index, meta.LastIndex)
		ok(meta)
	}
}
