package certs

import (
	"math/rand/v2"
	"time"
)

// minRetry is the shortest wait between two failed issuances.
const minRetry = 10 * time.Millisecond

// renewalTime returns when to renew a leaf valid from notBefore to notAfter:
// a uniformly random moment between 60% and 90% of its lifetime (Consul's
// window), not before now; now if 90% has already passed. The window ends
// at least margin before notAfter (the time a slow issuer may need), moving
// its start earlier too if it must, so that the new leaf arrives in time.
func renewalTime(now, notBefore, notAfter time.Time, margin time.Duration) time.Time {
	life := notAfter.Sub(notBefore)
	lo := notBefore.Add(life * 6 / 10)
	hi := notBefore.Add(life * 9 / 10)
	if m := notAfter.Add(-margin); m.Before(hi) {
		hi = m
	}
	if hi.Before(lo) {
		lo = hi
	}
	if lo.Before(now) {
		lo = now
	}
	if !hi.After(lo) {
		return lo
	}
	return lo.Add(rand.N(hi.Sub(lo)))
}

// issueTimes remembers how long the last few successful issuances took.
type issueTimes struct {
	last [4]time.Duration
	n    int
}

func (t *issueTimes) add(d time.Duration) {
	t.last[t.n%len(t.last)] = d
	t.n++
}

// margin is how long before a leaf's expiry its renewal must start: twice
// the slowest of the last few issuances.
func (t *issueTimes) margin() time.Duration {
	return 2 * max(t.last[0], t.last[1], t.last[2], t.last[3])
}

// jitter returns a uniformly random duration in [0, d].
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// backoff is a jittered exponential backoff: the n-th consecutive failure
// waits a random duration in [b/2, b], where b = min·2ⁿ⁻¹ capped at max.
type backoff struct {
	min, max time.Duration
	cur      time.Duration // 0 after a reset
}

// next returns how long to wait after one more failure. When the current
// leaf is still valid (untilExpiry > 0) the wait is shortened so that the
// retry happens before the leaf expires.
func (b *backoff) next(untilExpiry time.Duration) time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	d := b.cur/2 + jitter(b.cur/2)
	if untilExpiry > 0 && d >= untilExpiry {
		d = untilExpiry / 2
	}
	return max(d, minRetry)
}

func (b *backoff) reset() { b.cur = 0 }
