package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func instances(n int) []Instance {
	out := make([]Instance, n)
	for i := range out {
		out[i] = Instance{ID: fmt.Sprintf("i%d", i), Address: fmt.Sprintf("127.0.0.1:%d", 1000+i)}
	}
	return out
}

func ids(in []Instance) []string {
	out := make([]string, len(in))
	for i, x := range in {
		out[i] = x.ID
	}
	return out
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Pick rotates the starting instance and returns every instance once.
func TestBalancerRoundRobin(t *testing.T) {
	var b Balancer
	in := instances(3)
	firsts := map[string]int{}
	for range 30 {
		got := b.Pick("api", in)
		if len(got) != 3 {
			t.Fatalf("Pick returned %v", ids(got))
		}
		seen := map[string]bool{}
		for _, x := range got {
			seen[x.ID] = true
		}
		if len(seen) != 3 {
			t.Fatalf("Pick returned duplicates: %v", ids(got))
		}
		firsts[got[0].ID]++
	}
	for _, x := range in {
		if firsts[x.ID] != 10 {
			t.Fatalf("first picks %v, want 10 each", firsts)
		}
	}
	if got := b.Pick("api", nil); got != nil {
		t.Fatalf("Pick(nil) = %v", got)
	}
	// Pick does not modify its input.
	if !slices.Equal(ids(in), []string{"i0", "i1", "i2"}) {
		t.Fatalf("input modified: %v", ids(in))
	}
}

// An instance that keeps failing is ejected for EjectFor (doubling on
// repeated ejections), tried last while ejected, and cleared by a success.
func TestBalancerEjection(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	b := NewBalancer(WithEjection(2, 10*time.Second, 25*time.Second))
	b.now = clk.Now
	in := instances(3)
	bad := in[1]
	dialErr := errors.New("connection refused")

	b.Report("api", bad, dialErr)
	if len(b.Ejected("api")) != 0 {
		t.Fatal("ejected after one failure")
	}
	b.Report("api", bad, dialErr)
	if got := ids(b.Ejected("api")); !slices.Equal(got, []string{"i1"}) {
		t.Fatalf("Ejected = %v after 2 failures", got)
	}
	for range 6 {
		got := b.Pick("api", in)
		if got[len(got)-1].ID != "i1" || len(got) != 3 {
			t.Fatalf("ejected instance not last: %v", ids(got))
		}
	}
	// Failures while ejected (tried because all others failed) change nothing.
	b.Report("api", bad, dialErr)

	clk.Advance(10 * time.Second)
	if len(b.Ejected("api")) != 0 {
		t.Fatal("still ejected after EjectFor")
	}
	firsts := map[string]bool{}
	for range 3 {
		firsts[b.Pick("api", in)[0].ID] = true
	}
	if !firsts["i1"] {
		t.Fatal("instance not back in rotation after its ejection")
	}
	// On probation: one failure ejects it again, for twice as long.
	b.Report("api", bad, dialErr)
	clk.Advance(19 * time.Second)
	if got := ids(b.Ejected("api")); !slices.Equal(got, []string{"i1"}) {
		t.Fatalf("second ejection shorter than 2×EjectFor: %v", got)
	}
	clk.Advance(time.Second)
	b.Pick("api", in) // ends the ejection
	b.Report("api", bad, dialErr)
	clk.Advance(24 * time.Second) // capped at MaxEjectFor (25s), not 40s
	if len(b.Ejected("api")) != 1 {
		t.Fatal("third ejection ended early")
	}
	clk.Advance(time.Second)
	if len(b.Ejected("api")) != 0 {
		t.Fatal("ejection not capped at MaxEjectFor")
	}
	// A success clears the record: it takes EjectAfter failures again.
	b.Pick("api", in)
	b.Report("api", bad, nil)
	b.Report("api", bad, dialErr)
	if len(b.Ejected("api")) != 0 {
		t.Fatal("ejected after one failure following a success")
	}
}

// The caller giving up is not the instance's fault; a timeout is.
func TestBalancerIgnoresCancellation(t *testing.T) {
	b := NewBalancer(WithEjection(1, 0, 0))
	in := instances(2)
	b.Report("api", in[0], fmt.Errorf("dial: %w", context.Canceled))
	if len(b.Ejected("api")) != 0 {
		t.Fatal("ejected for the caller's cancellation")
	}
	b.Report("api", in[0], fmt.Errorf("dial: %w", context.DeadlineExceeded))
	if len(b.Ejected("api")) != 1 {
		t.Fatal("not ejected for a timeout")
	}
}

// When every instance is ejected, Pick still returns them all.
func TestBalancerAllEjected(t *testing.T) {
	b := NewBalancer(WithEjection(1, 0, 0))
	in := instances(3)
	for _, x := range in {
		b.Report("api", x, errors.New("down"))
	}
	if got := b.Pick("api", in); len(got) != 3 {
		t.Fatalf("Pick with all ejected = %v", ids(got))
	}
	// Records of instances that are gone are dropped.
	b.Pick("api", in[:1])
	b.mu.Lock()
	n := len(b.services["api"].hosts)
	b.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d host records kept for 1 instance", n)
	}
}

func TestBalancerConcurrent(t *testing.T) {
	var b Balancer
	in := instances(4)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				p := b.Pick("api", in)
				var err error
				if (g+i)%3 == 0 {
					err = errors.New("x")
				}
				b.Report("api", p[0], err)
				_ = b.Ejected("api")
			}
		})
	}
	wg.Wait()
}
