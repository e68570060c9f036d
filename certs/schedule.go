package certs

import (
	"math/rand/v2"
	"time"
)

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
