package discovery

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Picker is implemented by a Resolver that balances the instances it
// resolves. A dialer (ztnet's Dial) asks it for the order in which to try
// the instances of one dial, and reports the outcome of each attempt.
type Picker interface {
	// Pick returns instances (as Resolve returned them) in the order a
	// dial should try them. It may leave instances out; it does not modify
	// instances.
	Pick(service string, instances []Instance) []Instance
	// Report tells how a dial attempt to in went: nil if the instance
	// answered (a refusal by its policy is an answer), the error otherwise.
	Report(service string, in Instance, err error)
}

// Balancer is a [Picker]: it spreads dials over the instances of a service
// in round-robin order and ejects an instance that keeps failing.
//
// After a number of consecutive failed dials (3 by default) an instance is
// ejected (for 10s by default): Pick then puts it after every other
// instance, so it is tried only when all the others have failed. When its
// ejection ends it is tried again in turn; one more failure ejects it again
// for twice as long (up to 5m by default), one success clears its record.
// Errors that only say the caller gave up (context.Canceled) are not held
// against an instance. [WithEjection] changes the numbers.
//
// The zero Balancer is ready to use with the defaults. A Balancer is safe
// for concurrent use and must not be copied after first use.
type Balancer struct {
	cfg balancerConfig

	mu       sync.Mutex
	services map[string]*balanceState
	now      func() time.Time // for tests; time.Now when nil
}

// NewBalancer returns a Balancer configured by opts.
func NewBalancer(opts ...BalancerOption) *Balancer {
	b := &Balancer{}
	for _, o := range opts {
		o(&b.cfg)
	}
	return b
}

var _ Picker = (*Balancer)(nil)

type balanceState struct {
	next  uint64
	hosts map[instanceKey]*hostState // instances with failures on record
}

type instanceKey struct{ id, address string }

type hostState struct {
	in        Instance
	failures  int       // consecutive failures since the last success or ejection
	ejections int       // ejections since the last success
	until     time.Time // end of the current ejection; zero when not ejected
}

func keyOf(in Instance) instanceKey { return instanceKey{in.ID, in.Address} }

func (b *Balancer) clock() time.Time {
	if b.now != nil {
		return b.now()
	}
	return time.Now()
}

func (b *Balancer) ejectAfter() int {
	if b.cfg.ejectAfter > 0 {
		return b.cfg.ejectAfter
	}
	return 3
}

func (b *Balancer) ejectFor(ejections int) time.Duration {
	base, ceiling := b.cfg.ejectFor, b.cfg.maxEjectFor
	if base <= 0 {
		base = 10 * time.Second
	}
	if ceiling <= 0 {
		ceiling = 5 * time.Minute
	}
	d := base
	for range ejections {
		if d >= ceiling/2 {
			return ceiling
		}
		d *= 2
	}
	return min(d, ceiling)
}

// state returns the state of service; b.mu is held.
func (b *Balancer) state(service string) *balanceState {
	if b.services == nil {
		b.services = make(map[string]*balanceState)
	}
	st := b.services[service]
	if st == nil {
		st = &balanceState{}
		b.services[service] = st
	}
	return st
}

// ejected reports whether h is ejected now, ending an ejection that is
// over; b.mu is held.
func (b *Balancer) ejected(h *hostState, now time.Time) bool {
	if h == nil || h.until.IsZero() {
		return false
	}
	if now.Before(h.until) {
		return true
	}
	// On probation: the next failure ejects it again, for longer.
	h.until = time.Time{}
	h.failures = b.ejectAfter() - 1
	return false
}

// Pick returns every instance, starting one further than the previous
// Pick for the same service, with ejected instances last.
func (b *Balancer) Pick(service string, instances []Instance) []Instance {
	n := len(instances)
	if n == 0 {
		return nil
	}
	out := make([]Instance, 0, n)
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.state(service)
	start := int(st.next % uint64(n))
	st.next++
	if len(st.hosts) == 0 {
		out = append(out, instances[start:]...)
		return append(out, instances[:start]...)
	}
	now := b.clock()
	for i := range n {
		in := instances[(start+i)%n]
		if !b.ejected(st.hosts[keyOf(in)], now) {
			out = append(out, in)
		}
	}
	if len(out) < n {
		for i := range n {
			in := instances[(start+i)%n]
			if b.ejected(st.hosts[keyOf(in)], now) {
				out = append(out, in)
			}
		}
	}
	// Forget instances that are gone (their records would only grow).
	if len(st.hosts) > n {
		for k := range st.hosts {
			if !slices.ContainsFunc(instances, func(in Instance) bool { return keyOf(in) == k }) {
				delete(st.hosts, k)
			}
		}
	}
	return out
}

// Report records the outcome of a dial to in; see [Balancer].
func (b *Balancer) Report(service string, in Instance, err error) {
	if err != nil && errors.Is(err, context.Canceled) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.state(service)
	k := keyOf(in)
	h := st.hosts[k]
	if err == nil {
		if h != nil {
			delete(st.hosts, k)
		}
		return
	}
	if st.hosts == nil {
		st.hosts = make(map[instanceKey]*hostState)
	}
	if h == nil {
		h = &hostState{in: in}
		st.hosts[k] = h
	}
	now := b.clock()
	if b.ejected(h, now) {
		return // tried because every instance was ejected: already out
	}
	h.failures++
	if h.failures >= b.ejectAfter() {
		h.until = now.Add(b.ejectFor(h.ejections))
		h.ejections++
		h.failures = 0
	}
}

// Ejected returns the instances of service that are ejected now.
func (b *Balancer) Ejected(service string) []Instance {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.services[service]
	if st == nil {
		return nil
	}
	now := b.clock()
	var out []Instance
	for _, h := range st.hosts {
		if !h.until.IsZero() && now.Before(h.until) {
			out = append(out, h.in)
		}
	}
	slices.SortFunc(out, func(x, y Instance) int {
		return cmp.Or(cmp.Compare(x.ID, y.ID), cmp.Compare(x.Address, y.Address))
	})
	return out
}
