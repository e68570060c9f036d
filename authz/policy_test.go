package authz

import (
	"sync"
	"testing"
	"time"
)

func TestChanged(t *testing.T) {
	p := NewPolicy()
	ch := p.Changed()
	select {
	case <-ch:
		t.Fatal("Changed closed before any change")
	default:
	}
	if err := p.Set(entry("api", l4("web", allow))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed by Set")
	}
	next := p.Changed()
	if next == ch {
		t.Fatal("Changed returned a closed channel after the change")
	}
	if err := p.Set(entry("api", l4("web", "nope"))); err == nil {
		t.Fatal("invalid Set succeeded")
	}
	select {
	case <-next:
		t.Fatal("Changed closed by a failed Set")
	default:
	}
	if err := p.Set(); err != nil {
		t.Fatal(err)
	}
	<-next
}

func TestSetAtomic(t *testing.T) {
	p := newTestPolicy(t, false, entry("api", l4("web", allow)), entry("db", l4("web", allow)))
	// The first entry is valid, the second is not: neither is applied.
	err := p.Set(entry("api", l4("web", deny)), entry("db", l4("web", allow), l4("web", deny)))
	if err == nil {
		t.Fatal("Set succeeded")
	}
	for _, dst := range []string{"api", "db"} {
		if d := p.Authorize(Request{Source: sid(svc("web")), Destination: sid(svc(dst))}); !d.Allowed {
			t.Errorf("web → %s after a failed Set: %v", dst, d)
		}
	}
	// A successful Set replaces everything: db has no intention any more.
	if err := p.Set(entry("api", l4("web", deny))); err != nil {
		t.Fatal(err)
	}
	if d := p.Authorize(Request{Source: sid(svc("web")), Destination: sid(svc("db"))}); d.Allowed || d.Kind() != KindDefault {
		t.Errorf("web → db after replacing: %v", d)
	}
}

// TestConcurrentSetAndAuthorize is for -race: readers see one snapshot or
// the other, never a mix.
func TestConcurrentSetAndAuthorize(t *testing.T) {
	allowAll := []ConfigEntry{entry("api", l4("web", allow)), entry("db", l4("web", allow))}
	denyAll := []ConfigEntry{entry("api", l4("web", deny)), entry("db", l4("web", deny))}
	p := newTestPolicy(t, false, allowAll...)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Each decision comes whole from one snapshot or the other.
				d := p.Authorize(Request{Source: sid(svc("web")), Destination: sid(svc("api"))})
				if d.Kind() != KindIntention || d.Reason() == "" {
					t.Errorf("bad decision %v", d)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-p.Changed():
			}
		}
	}()
	for i := range 200 {
		es := allowAll
		if i%2 == 1 {
			es = denyAll
		}
		if err := p.Set(es...); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// Before intentions are set the policy denies everything and says so in
// Ready; an empty set is a policy (the default decides).
func TestPolicyReady(t *testing.T) {
	p := NewPolicy()
	if err := p.Ready(); err == nil || err.Error() != "authz: no intentions set or loaded yet: denying everything" {
		t.Fatalf("Ready() before Set = %v", err)
	}
	if d := p.Authorize(l4req("web", "api")); d.Allowed || d.Kind() != KindNotSynced {
		t.Fatalf("before Set: %v", d)
	}
	if err := p.Set(); err != nil {
		t.Fatal(err)
	}
	if err := p.Ready(); err != nil {
		t.Fatalf("Ready() after Set() = %v", err)
	}
}
