package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestDemo(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	err := runDemo(ctx, &out, demoConfig{logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("demo took %v", d)
	}
	s := out.String()
	for _, want := range []string{
		"-- fortune-1 spiffe://ztn.dev/ns/default/dc/dc1/svc/fortune",
		"-- fortune-2 spiffe://ztn.dev/ns/default/dc/dc1/svc/fortune",
		"-- fortune-3 spiffe://ztn.dev/ns/default/dc/dc1/svc/fortune",
		"refused: ztnet: dial fortune: spiffe://ztn.dev/ns/default/dc/dc1/svc/intruder denied: no intention matches (default deny)",
		"0 failed",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// After fortune-2 stops, it serves nothing more.
	after := s[strings.Index(s, "fortune-2 stops"):]
	if strings.Contains(after, "-- fortune-2 ") {
		t.Error("a stopped instance served a fortune")
	}
}
