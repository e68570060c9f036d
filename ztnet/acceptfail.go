package ztnet

import (
	"context"
	"errors"
	"log/slog"
	"syscall"
	"time"
)

// acceptWarnEvery is how often, at most, a listener warns that Accept fails.
const acceptWarnEvery = time.Minute

// acceptFailures reports a listener's failing Accept calls (out of file
// descriptors, mostly) without flooding the log: one Warn when a run of
// failures starts, at most every acceptWarnEvery, naming the file
// descriptor limit and how many are open; Debug for each retry; one Info
// when accepting works again after a Warn. Each failure is counted in
// ztn.listener.accept_failures. Only the accept loop uses it.
type acceptFailures struct {
	l        *listener
	run      int       // failures in the current run
	started  time.Time // of the current run
	warnedAt time.Time
	warned   bool // a Warn was logged for the current run
}

// failed records a failed Accept that will be retried after delay.
func (a *acceptFailures) failed(ctx context.Context, err error, delay time.Duration) {
	s := a.l.svc
	now := time.Now()
	if a.run == 0 {
		a.started = now
	}
	a.run++
	fdLimit := errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
	reason := "other"
	if fdLimit {
		reason = "fd_limit"
	}
	s.m.acceptFailure(ctx, reason)
	if a.run > 1 || (!a.warnedAt.IsZero() && now.Sub(a.warnedAt) < acceptWarnEvery) {
		s.log.LogAttrs(ctx, slog.LevelDebug, "ztn accept failed; retrying",
			slog.String("error", err.Error()), slog.Int("failures", a.run), slog.Duration("retry_in", delay))
		return
	}
	a.warnedAt, a.warned = now, true
	attrs := []slog.Attr{
		slog.String("addr", a.l.raw.Addr().String()),
		slog.String("error", err.Error()),
		slog.Int("service_conns", a.l.svc.openConns()),
		slog.Duration("retry_in", delay),
	}
	msg := "ztn accept failing; new clients wait in the kernel's queue until it works again or their handshake times out"
	if fdLimit {
		msg = "ztn accept failing: out of file descriptors (RLIMIT_NOFILE); new clients wait in the kernel's queue until some are freed or their handshake times out"
		if limit, ok := fdLimitNow(); ok {
			attrs = append(attrs, slog.Uint64("fd_limit", limit))
		}
		if n, ok := countOpenFDs(); ok {
			attrs = append(attrs, slog.Int("open_fds", n))
		}
	}
	s.log.LogAttrs(ctx, slog.LevelWarn, msg, attrs...)
}

// ok records a successful Accept, ending a run of failures.
func (a *acceptFailures) ok(ctx context.Context) {
	if a.run == 0 {
		return
	}
	if a.warned {
		a.l.svc.log.LogAttrs(ctx, slog.LevelInfo, "ztn accepting again",
			slog.String("addr", a.l.raw.Addr().String()),
			slog.Int("failures", a.run), slog.Duration("after", time.Since(a.started)))
	}
	a.run, a.warned = 0, false
}

// openConns returns how many accepted connections s holds open.
func (s *Service) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
