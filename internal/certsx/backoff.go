package certsx

import (
	"math/rand/v2"
	"time"
)

// minRetry is the shortest wait between two failures.
const minRetry = 10 * time.Millisecond

// Jitter returns a uniformly random duration in [0, d].
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// Backoff is a jittered exponential backoff: the n-th consecutive failure
// waits a random duration in [b/2, b], where b = Min·2ⁿ⁻¹ capped at Max.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration // 0 after a reset
}

// Next returns how long to wait after one more failure. When the current
// leaf is still valid (untilExpiry > 0) the wait is shortened so that the
// retry happens before the leaf expires.
func (b *Backoff) Next(untilExpiry time.Duration) time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur = min(2*b.cur, b.Max)
	}
	d := b.cur/2 + Jitter(b.cur/2)
	if untilExpiry > 0 && d >= untilExpiry {
		d = untilExpiry / 2
	}
	return max(d, minRetry)
}

// Reset starts the backoff over, after a success.
func (b *Backoff) Reset() { b.cur = 0 }
