package logtest

import (
	"log/slog"
	"testing"
)

func TestCapture(t *testing.T) {
	logger, lines := Capture(t)
	logger.With("component", "x").Info("started", "n", 3)
	logger.Debug("detail")
	got := lines()
	if len(got) != 2 || got[0] != "INFO started component=x n=3" || got[1] != "DEBUG detail" {
		t.Fatalf("lines %q", got)
	}
	if n := Count(got, "started", "n=3"); n != 1 {
		t.Fatalf("Count = %d, want 1", n)
	}
	if n := Count(got, "started", "n=4"); n != 0 {
		t.Fatalf("Count = %d, want 0", n)
	}
}

func TestBufferRecords(t *testing.T) {
	var b Buffer
	l := slog.New(slog.NewJSONHandler(&b, nil))
	l.Info("a", "k", 1)
	l.Info("b")
	l.Info("a", "k", 2)
	recs := b.Records(t, "a")
	if len(recs) != 2 || recs[0]["k"] != 1.0 || recs[1]["k"] != 2.0 {
		t.Fatalf("records %v", recs)
	}
}
