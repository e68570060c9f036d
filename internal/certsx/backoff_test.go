package certsx

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 8 * time.Second}
	for i, bound := range []time.Duration{1, 2, 4, 8, 8, 8} {
		bound *= time.Second
		if d := b.Next(time.Hour); d < bound/2 || d > bound {
			t.Fatalf("failure %d: wait %v, want within [%v, %v]", i+1, d, bound/2, bound)
		}
	}
	b.Reset()
	if d := b.Next(time.Hour); d > time.Second {
		t.Fatalf("after reset: wait %v, want at most 1s", d)
	}

	// A valid leaf is retried before it expires, whatever the backoff.
	b = Backoff{Min: time.Minute, Max: time.Hour}
	if d := b.Next(10 * time.Second); d != 5*time.Second {
		t.Fatalf("10s before expiry: wait %v, want 5s", d)
	}
	if d := b.Next(time.Millisecond); d != minRetry {
		t.Fatalf("1ms before expiry: wait %v, want %v", d, minRetry)
	}
	// An expired one follows the backoff.
	if d := b.Next(-time.Second); d < 2*time.Minute {
		t.Fatalf("expired: wait %v, want the backoff (>= 2m)", d)
	}
}
