// Package logtest captures log output in tests, for assertions on what ztn
// logs: a Buffer that slog handlers write to from any goroutine, and a
// logger (Capture) that keeps every record as one line.
//
//	logger, lines := logtest.Capture(t)
//	src, err := certs.NewFiles(ctx, cfg, certs.WithLogger(logger))
//	...
//	if logtest.Count(lines(), "certs: files", "reload failed") == 0 { t.Error("no reload failure logged") }
package logtest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Buffer collects a handler's output; safe for concurrent writers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Records returns the records of a JSON handler whose message is msg, in
// order.
func (l *Buffer) Records(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split([]byte(l.String()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// Capture returns a logger, at Debug, that writes every record to the
// test's output (except in a benchmark that is not verbose, whose output
// would always be shown) and keeps it as one line, "LEVEL message
// key=value...", and a function that returns the lines so far.
func Capture(t testing.TB) (*slog.Logger, func() []string) {
	var next slog.Handler = slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})
	if _, bench := t.(*testing.B); bench && !testing.Verbose() {
		next = slog.DiscardHandler
	}
	h := &capture{next: next, lines: &lines{}}
	return slog.New(h), h.lines.get
}

// Count returns how many of lines contain every one of subs.
func Count(lines []string, subs ...string) int {
	n := 0
outer:
	for _, l := range lines {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue outer
			}
		}
		n++
	}
	return n
}

type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.l = append(l.l, s)
}

func (l *lines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.l...)
}

type capture struct {
	next  slog.Handler
	attrs []slog.Attr
	lines *lines
}

func (h *capture) Enabled(context.Context, slog.Level) bool { return true }

func (h *capture) Handle(ctx context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range h.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	h.lines.add(b.String())
	return h.next.Handle(ctx, r)
}

func (h *capture) WithAttrs(as []slog.Attr) slog.Handler {
	return &capture{next: h.next.WithAttrs(as), attrs: append(append([]slog.Attr(nil), h.attrs...), as...), lines: h.lines}
}

func (h *capture) WithGroup(g string) slog.Handler {
	return &capture{next: h.next.WithGroup(g), attrs: h.attrs, lines: h.lines}
}
