package ztntest_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// fakeTB is a testing.TB for examples and for tests of failures: it runs
// its cleanups when done, records what Fatalf and Errorf say, and writes
// its output to out. Its Fatalf ends the goroutine, as testing's does.
type fakeTB struct {
	testing.TB // nil: the methods below are all a Mesh uses
	out        io.Writer
	ctx        context.Context
	cancel     context.CancelFunc

	mu       sync.Mutex
	cleanups []func()
	failures []string
}

func newFakeTB(out io.Writer) *fakeTB {
	ctx, cancel := context.WithCancel(context.Background())
	return &fakeTB{out: out, ctx: ctx, cancel: cancel}
}

func (f *fakeTB) Helper()                  {}
func (f *fakeTB) Context() context.Context { return f.ctx }
func (f *fakeTB) Output() io.Writer        { return f.out }
func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

// run runs body as the test, in its own goroutine (for Fatalf's Goexit),
// then the cleanups, last first; it returns what failed.
func (f *fakeTB) run(body func(t testing.TB)) []string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(f)
	}()
	<-done
	f.cancel()
	f.mu.Lock()
	cleanups := slices.Clone(f.cleanups)
	f.mu.Unlock()
	for _, fn := range slices.Backward(cleanups) {
		fn()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failures
}

// inTest runs body as the body of a test function would run, for the
// examples, and panics if it failed. In a test of your own, body is the
// test function and t its *testing.T.
func inTest(body func(t testing.TB)) {
	if failed := newFakeTB(io.Discard).run(body); len(failed) > 0 {
		panic(fmt.Sprint(failed))
	}
}
