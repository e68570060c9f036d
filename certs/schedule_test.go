package certs

import (
	"testing"
	"time"
)

func TestRenewalTime(t *testing.T) {
	nb := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(100 * time.Minute)
	tests := []struct {
		name   string
		now    time.Time
		lo, hi time.Duration // since nb
	}{
		{"fresh leaf: 60% to 90%", nb.Add(time.Minute), 60 * time.Minute, 90 * time.Minute},
		{"past 60%: from now to 90%", nb.Add(75 * time.Minute), 75 * time.Minute, 90 * time.Minute},
		{"past 90%: now", nb.Add(95 * time.Minute), 95 * time.Minute, 95 * time.Minute},
		{"expired: now", nb.Add(200 * time.Minute), 200 * time.Minute, 200 * time.Minute},
	}
	type margined struct {
		name   string
		now    time.Time
		margin time.Duration
		lo, hi time.Duration
	}
	more := []margined{
		{"small margin: window unchanged", nb.Add(time.Minute), 5 * time.Minute, 60 * time.Minute, 90 * time.Minute},
		{"margin cuts the window's end", nb.Add(time.Minute), 30 * time.Minute, 60 * time.Minute, 70 * time.Minute},
		{"margin before 60%: at the margin", nb.Add(time.Minute), 50 * time.Minute, 50 * time.Minute, 50 * time.Minute},
		{"margin already passed: now", nb.Add(80 * time.Minute), 50 * time.Minute, 80 * time.Minute, 80 * time.Minute},
	}
	for _, tt := range more {
		t.Run(tt.name, func(t *testing.T) {
			for range 2000 {
				got := renewalTime(tt.now, nb, na, tt.margin).Sub(nb)
				if got < tt.lo || got > tt.hi {
					t.Fatalf("renewal at %v, want within [%v, %v]", got, tt.lo, tt.hi)
				}
			}
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sum time.Duration
			const n = 2000
			for range n {
				got := renewalTime(tt.now, nb, na, 0).Sub(nb)
				if got < tt.lo || got > tt.hi {
					t.Fatalf("renewal at %v, want within [%v, %v]", got, tt.lo, tt.hi)
				}
				sum += got
			}
			// Uniform: the mean is near the middle of the window.
			if mean, mid := sum/n, (tt.lo+tt.hi)/2; (mean - mid).Abs() > (tt.hi-tt.lo)/20 {
				t.Errorf("mean renewal at %v, want about %v", mean, mid)
			}
		})
	}
}

func TestIssueTimesMargin(t *testing.T) {
	var it issueTimes
	if m := it.margin(); m != 0 {
		t.Fatalf("no issuance yet: margin %v, want 0", m)
	}
	for _, d := range []time.Duration{900, 10, 20, 30} {
		it.add(d * time.Millisecond)
	}
	if m := it.margin(); m != 1800*time.Millisecond {
		t.Fatalf("margin %v, want twice the slowest (1.8s)", m)
	}
	it.add(40 * time.Millisecond) // the slow one falls out of the last four
	if m := it.margin(); m != 80*time.Millisecond {
		t.Fatalf("margin %v, want 80ms", m)
	}
}
