package certs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/ztnlabs/ztn/internal/test/certstest"
	"github.com/ztnlabs/ztn/internal/test/logtest"
)

// slack absorbs scheduling delays (the race detector, a busy machine).
const slack = 300 * time.Millisecond

func TestRotatorRenewsInWindow(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	r := newTestSource(t, ca, "web", 3*time.Second)
	prev, err := r.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		changed := r.Changed()
		waitChanged(t, changed, 4*time.Second, "a rotation")
		at := time.Now()
		cur, err := r.GetX509SVID()
		if err != nil {
			t.Fatal(err)
		}
		old, leaf := prev.Certificates[0], cur.Certificates[0]
		if leaf.SerialNumber.Cmp(old.SerialNumber) == 0 {
			t.Fatalf("rotation %d: serial unchanged", i)
		}
		life := old.NotAfter.Sub(old.NotBefore)
		lo, hi := old.NotBefore.Add(life*6/10), old.NotBefore.Add(life*9/10)
		if at.Before(lo) || at.After(hi.Add(slack)) {
			t.Fatalf("rotation %d at %.0f%% of the lifetime, want within 60%%..90%%",
				i, 100*at.Sub(old.NotBefore).Seconds()/life.Seconds())
		}
		prev = cur
	}
}

// slowIssuer delivers what a real DevCA issuer signed, but only after delay,
// as a loaded CA or network would: the leaf's lifetime is already running.
type slowIssuer struct {
	next  Issuer
	delay time.Duration
}

func (s slowIssuer) Issue(ctx context.Context) (*Identity, error) {
	id, err := s.next.Issue(ctx)
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return id, err
}

// TestRotatorSlowIssuer: with an issuer that takes a quarter of the leaf's
// lifetime to deliver (and X.509's whole seconds may cut up to a second
// more), renewal starts early enough that the SVID never lapses. Renewing
// in 60%..90% alone leaves a gap in most rotations.
func TestRotatorSlowIssuer(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	r, err := NewRotator(context.Background(), slowIssuer{ca.Issuer("dc1", "web", 4*time.Second), time.Second}, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	first, _ := r.GetX509SVID()
	var lapses, polls int
	var lastErr error
	seen := map[string]bool{first.Certificates[0].SerialNumber.String(): true}
	for end := time.Now().Add(7 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		polls++
		svid, err := r.GetX509SVID()
		if err != nil {
			lapses++
			lastErr = err
			continue
		}
		seen[svid.Certificates[0].SerialNumber.String()] = true
	}
	if lapses > 0 {
		t.Errorf("the SVID lapsed in %d of %d polls: %v", lapses, polls, lastErr)
	}
	if len(seen) < 3 {
		t.Errorf("%d SVIDs seen in 7s, want at least 3 (two rotations)", len(seen))
	}
}

func TestRotatorRenewSoon(t *testing.T) {
	ca := newTestCA(t)
	r := newTestSource(t, ca, "web", time.Hour)
	before, _ := r.GetX509SVID()
	changed := r.Changed()
	r.RenewSoon(0)
	waitChanged(t, changed, time.Second, "RenewSoon")
	after, err := r.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if after.Certificates[0].SerialNumber.Cmp(before.Certificates[0].SerialNumber) == 0 {
		t.Fatal("serial unchanged after RenewSoon")
	}
}

// TestRotatorFirstIssuanceError: NewRotator returns the issuer's error as
// it is, with no second package prefix.
func TestRotatorFirstIssuanceError(t *testing.T) {
	ca := newTestCA(t)
	injected := errors.New("injected")
	f := &faultyIssuer{next: ca.Issuer("dc1", "web", time.Hour), fail: injected}
	_, err := NewRotator(context.Background(), f, WithLogger(testLogger(t)))
	if !errors.Is(err, injected) || err.Error() != "injected" {
		t.Fatalf("err = %v, want the issuer's error as it is", err)
	}
	_, err = NewRotator(context.Background(), ca.Issuer("dc1", "web", 0), WithLogger(testLogger(t)))
	if want := "certs: dev CA: TTL 0s is not positive"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// TestRotatorFailClosed: renewal fails, is retried with backoff until and past
// expiry, the expired SVID is refused, and the Rotator recovers once the
// issuer works again.
func TestRotatorFailClosed(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	f := &faultyIssuer{next: ca.Issuer("dc1", "web", 3*time.Second)}
	logs := &logtest.Buffer{}
	r, err := NewRotator(context.Background(), f,
		WithLogger(slog.New(slog.NewJSONHandler(logs, nil))), WithBackoff(50*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	first, _ := r.GetX509SVID()
	leaf := first.Certificates[0]
	f.setFail(errors.New("injected fault"))

	time.Sleep(time.Until(leaf.NotAfter) + 500*time.Millisecond)
	_, err = r.GetX509SVID()
	if err == nil {
		t.Fatal("GetX509SVID returned an expired SVID")
	}
	want := "certs: SVID for spiffe://ztn.test/ns/default/dc/dc1/svc/web expired at " + leaf.NotAfter.Format(time.RFC3339) +
		": last renewal error: injected fault"
	if err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}
	if _, err := r.GetX509BundleForTrustDomain(testTD); err != nil {
		t.Errorf("bundle after expiry: %v", err)
	}

	attempts := f.attemptTimes()[1:] // after the first issuance
	if len(attempts) < 4 {
		t.Fatalf("%d renewal attempts, want retries", len(attempts))
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	if at := attempts[0].Sub(leaf.NotBefore); at < life*6/10 || at > life*9/10+slack {
		t.Errorf("first renewal at %v of a %v lifetime, want in the 60–90%% window", at, life)
	}
	var afterExpiry int
	for i := 1; i < len(attempts); i++ {
		if gap := attempts[i].Sub(attempts[i-1]); gap < 10*time.Millisecond || gap > 200*time.Millisecond+slack {
			t.Errorf("retry %d after %v, want within the backoff bounds", i, gap)
		}
		if attempts[i].After(leaf.NotAfter) {
			afterExpiry++
		}
	}
	if afterExpiry == 0 {
		t.Error("no retry after expiry")
	}
	if !strings.Contains(logs.String(), `"msg":"certs: SVID renewal failed"`) || !strings.Contains(logs.String(), `"expired":true`) {
		t.Errorf("failures not logged as such:\n%s", logs)
	}

	changed := r.Changed()
	f.setFail(nil)
	waitChanged(t, changed, 200*time.Millisecond+slack, "recovery")
	if _, err := r.GetX509SVID(); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// TestRotatorRetriesBeforeExpiry: a long backoff is cut short so that the
// SVID gets retried while it is still valid.
func TestRotatorRetriesBeforeExpiry(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	f := &faultyIssuer{next: ca.Issuer("dc1", "web", 5*time.Second)}
	r, err := NewRotator(context.Background(), f, WithLogger(testLogger(t)), WithBackoff(time.Minute, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	svid, _ := r.GetX509SVID()
	notAfter := svid.Certificates[0].NotAfter
	f.setFail(errors.New("injected fault"))
	time.Sleep(time.Until(notAfter) + 100*time.Millisecond)
	var before int
	for _, at := range f.attemptTimes()[1:] {
		if !at.After(notAfter) {
			before++
		}
	}
	if before < 2 {
		t.Fatalf("%d attempts before expiry, want a retry after the first failure", before)
	}
}

func TestRotatorClose(t *testing.T) {
	ca := newTestCA(t)
	r := newTestSource(t, ca, "web", time.Hour)
	changed := r.Changed()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, changed, time.Second, "Close to wake watchers")
	if _, err := r.GetX509SVID(); !errors.Is(err, ErrClosed) {
		t.Errorf("GetX509SVID after Close: %v", err)
	}
	if _, err := r.GetX509BundleForTrustDomain(testTD); !errors.Is(err, ErrClosed) {
		t.Errorf("GetX509BundleForTrustDomain after Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	r.RenewSoon(0) // harmless
	if err := ca.RotateRoot(); err != nil {
		t.Fatal(err)
	}
}

func TestRotatorBundle(t *testing.T) {
	ca := newTestCA(t)
	r := newTestSource(t, ca, "web", time.Hour)
	b, err := r.GetX509BundleForTrustDomain(testTD)
	if err != nil || !b.Equal(ca.Bundle()) {
		t.Fatalf("bundle %v, %v; want the CA's", b, err)
	}
	if _, err := r.GetX509BundleForTrustDomain(spiffeidTD(t, "other.test")); err == nil || !strings.HasPrefix(err.Error(), "certs: ") {
		t.Errorf("bundle of an unknown trust domain: %v", err)
	}
}

// TestRotatorFollowsRootRotation: the new root reaches the bundle at once,
// the leaf moves to it within the root change window, and the old root stays
// while the old leaf is unexpired.
func TestRotatorFollowsRootRotation(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	const ttl = 3 * time.Second
	r := newTestSource(t, ca, "web", ttl, WithRootChangeWindow(300*time.Millisecond))
	oldSVID, _ := r.GetX509SVID()
	oldRoot := ca.Bundle().X509Authorities()[0]

	changed := r.Changed()
	if err := ca.RotateRoot(); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, changed, time.Second, "the bundle change")
	b, _ := r.GetX509BundleForTrustDomain(testTD)
	if n := len(b.X509Authorities()); n != 2 {
		t.Fatalf("bundle has %d roots after RotateRoot, want 2", n)
	}
	newRoot := ca.Bundle().X509Authorities()[1]

	deadline := time.After(300*time.Millisecond + slack)
	for {
		svid, err := r.GetX509SVID()
		if err != nil {
			t.Fatal(err)
		}
		if svid.Certificates[0].CheckSignatureFrom(newRoot) == nil {
			break
		}
		select {
		case <-r.Changed():
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatal("the leaf did not move to the new root within the root change window")
		}
	}
	b, _ = r.GetX509BundleForTrustDomain(testTD)
	if !b.HasX509Authority(oldRoot) {
		t.Fatal("old root dropped while the old leaf is valid")
	}

	// The old root stays while a leaf that chains to it is valid: the old
	// leaf, and new ones issued with the cross-signed root until the CA
	// drops the old root (when the old leaf expires). Then it goes.
	oldEnd := oldSVID.Certificates[0].NotAfter
	deadline = time.After(time.Until(oldEnd) + ttl + time.Second + slack)
	for {
		changed := r.Changed()
		b, _ = r.GetX509BundleForTrustDomain(testTD)
		if !b.HasX509Authority(oldRoot) {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("old root kept after every leaf that chains to it expired")
		}
	}
	if time.Now().Before(oldEnd) {
		t.Fatal("old root dropped while the old leaf is valid")
	}
	if n := len(b.X509Authorities()); n != 1 {
		t.Fatalf("bundle has %d roots, want the new one", n)
	}
}

func TestRotatorMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	ca := newTestCA(t)
	f := &faultyIssuer{next: ca.Issuer("dc1", "web", time.Hour)}
	r, err := NewRotator(context.Background(), f, WithLogger(testLogger(t)), WithMeterProvider(mp), WithBackoff(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	changed := r.Changed()
	r.RenewSoon(0)
	waitChanged(t, changed, time.Second, "a rotation")
	f.setFail(errors.New("injected fault"))
	r.RenewSoon(0)
	for deadline := time.Now().Add(time.Second); len(f.attemptTimes()) < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no failed attempt")
		}
	}
	time.Sleep(10 * time.Millisecond) // the counter is updated after Issue returns

	rotations, expiry := certstest.Metrics(t, reader)
	if got := rotations["success"]; got != 2 {
		t.Errorf("rotations{result=success} = %d, want 2", got)
	}
	if got := rotations["failure"]; got != 1 {
		t.Errorf("rotations{result=failure} = %d, want 1", got)
	}
	id := "spiffe://ztn.test/ns/default/dc/dc1/svc/web"
	if v, ok := expiry[id]; !ok || v < 3590 || v > 3600 {
		t.Errorf("expiry{spiffe_id=%s} = %v (reported: %v), want about 3600", id, v, ok)
	}

	r.Close()
	if _, expiry = certstest.Metrics(t, reader); len(expiry) != 0 {
		t.Errorf("expiry still reported after Close: %v", expiry)
	}
}

// flakyWatcher is a fault injector: its first WatchBundles fails at once,
// later ones are the DevCA issuer's.
type flakyWatcher struct {
	*devIssuer
	calls atomic.Int32
}

func (f *flakyWatcher) WatchBundles(ctx context.Context, update func([]*x509bundle.Bundle)) error {
	if f.calls.Add(1) == 1 {
		return errors.New("injected watch failure")
	}
	return f.devIssuer.WatchBundles(ctx, update)
}

func TestRotatorRestartsBundleWatch(t *testing.T) {
	ca := newTestCA(t)
	w := &flakyWatcher{devIssuer: ca.Issuer("dc1", "web", time.Hour).(*devIssuer)}
	r, err := NewRotator(context.Background(), w, WithLogger(testLogger(t)), WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for deadline := time.Now().Add(time.Second); w.calls.Load() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("WatchBundles not called again after failing")
		}
	}
	changed := r.Changed()
	if err := ca.RotateRoot(); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, changed, time.Second, "the bundle change")
	if b, _ := r.GetX509BundleForTrustDomain(testTD); len(b.X509Authorities()) != 2 {
		t.Fatalf("bundle has %d roots after RotateRoot, want 2", len(b.X509Authorities()))
	}
}
