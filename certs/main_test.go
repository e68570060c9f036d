package certs

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testTD = spiffeid.RequireTrustDomainFromString("ztn.test")

// testLogger logs into the test's output (shown with -v or on failure).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newTestCA(t *testing.T, opts ...DevCAOption) *DevCA {
	t.Helper()
	ca, err := NewDevCA(testTD, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// newTestSource returns a Rotator of ca for service "name" in dc1, closed
// when the test ends.
func newTestSource(t *testing.T, ca *DevCA, name string, ttl time.Duration, opts ...Option) *Rotator {
	t.Helper()
	opts = append([]Option{WithLogger(testLogger(t))}, opts...)
	r, err := ca.Source(context.Background(), "dc1", name, ttl, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// waitChanged waits for ch to close.
func waitChanged(t *testing.T, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// faultyIssuer is a fault injector, not a stand-in for a CA: it passes
// issuance through to a real DevCA issuer and fails on demand, which is the
// one thing a real CA cannot be made to do at a chosen moment.
type faultyIssuer struct {
	next Issuer

	mu       sync.Mutex
	fail     error
	attempts []time.Time
}

func (f *faultyIssuer) Issue(ctx context.Context) (*Identity, error) {
	f.mu.Lock()
	f.attempts = append(f.attempts, time.Now())
	err := f.fail
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.next.Issue(ctx)
}

func (f *faultyIssuer) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *faultyIssuer) attemptTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.attempts...)
}

func spiffeidTD(t *testing.T, name string) spiffeid.TrustDomain {
	t.Helper()
	td, err := spiffeid.TrustDomainFromString(name)
	if err != nil {
		t.Fatal(err)
	}
	return td
}
