package meshtest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Load runs an operation (a new connection, say) on several goroutines
// until stopped, counting what succeeded and what failed.
type Load struct {
	OK, Failed atomic.Int64

	mu   sync.Mutex
	errs []string // the first few failures, with their time
	stop func()
}

// StartLoad calls op on n goroutines, each call after the last, until Stop.
// op's context ends at Stop; a call that fails because of that is not
// counted.
func StartLoad(n int, op func(ctx context.Context) error) *Load {
	ctx, cancel := context.WithCancel(context.Background())
	ld := &Load{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := op(ctx)
				switch {
				case ctx.Err() != nil:
				case err != nil:
					ld.Failed.Add(1)
					ld.mu.Lock()
					if len(ld.errs) < 10 {
						ld.errs = append(ld.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
					}
					ld.mu.Unlock()
				default:
					ld.OK.Add(1)
				}
			}
		})
	}
	ld.stop = func() { cancel(); wg.Wait() }
	return ld
}

// Stop ends the load and waits for the calls in flight.
func (ld *Load) Stop() { ld.stop() }

// Errors returns the first ten failures, each with its time.
func (ld *Load) Errors() []string {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return append([]string(nil), ld.errs...)
}
