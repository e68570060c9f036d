// Package benchpair runs paired benchmarks: it alternates short time slices
// of each contender many times over, so that a change in background load on
// a shared machine hits all of them alike and the ratios between them stay
// meaningful. ztn's benchmarks against raw crypto/tls, Consul's native
// package and static certificates all measure this way.
package benchpair

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Slice is how long each contender runs in one turn.
const Slice = 150 * time.Millisecond

// Rates runs each contender for one Slice in turn, rounds times, from
// concurrency goroutines. It returns operations per second of wall time for
// each contender and, where the process's CPU time can be read, operations
// per CPU-second of this process (client and server both run here), which
// other processes' load hardly moves; cpu is nil otherwise. An error from a
// contender fails the benchmark.
func Rates(tb testing.TB, rounds, concurrency int, contenders []func() error) (wall, cpu []float64) {
	ops := make([]int64, len(contenders))
	spent := make([]time.Duration, len(contenders))
	used := make([]time.Duration, len(contenders))
	for range rounds {
		for i, op := range contenders {
			var n atomic.Int64
			var wg sync.WaitGroup
			stop := time.Now().Add(Slice)
			start, cpu0 := time.Now(), processCPU()
			for range concurrency {
				wg.Go(func() {
					for time.Now().Before(stop) {
						if err := op(); err != nil {
							tb.Error(err)
							return
						}
						n.Add(1)
					}
				})
			}
			wg.Wait()
			spent[i] += time.Since(start)
			used[i] += processCPU() - cpu0
			ops[i] += n.Load()
		}
	}
	wall = make([]float64, len(contenders))
	for i := range wall {
		wall[i] = float64(ops[i]) / spent[i].Seconds()
	}
	if used[0] > 0 {
		cpu = make([]float64, len(contenders))
		for i := range cpu {
			cpu[i] = float64(ops[i]) / used[i].Seconds()
		}
	}
	return wall, cpu
}
