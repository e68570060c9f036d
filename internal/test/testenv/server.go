package testenv

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// server is the life cycle every test server shares (Consul, Vault,
// Postgres, Redis): its process, started until ready, stopped, killed and
// started again. Each XServer embeds it; its Running, Stop, Kill, Start and
// Restart are theirs.
type server struct {
	t       testing.TB
	p       *proc
	timeout time.Duration
	// ready reports whether the started process serves.
	ready func(context.Context) (bool, error)
	// where says where it serves, in the "ready" line of the test's log.
	where func() string
	// stopSignal asks the process to exit: SIGTERM unless set.
	stopSignal syscall.Signal
	// busy are log lines after which a failed Start is tried again until
	// the start timeout (Postgres after a Kill: its old backends hold the
	// shared memory for a moment).
	busy []string
}

// Running reports whether the server process is running.
func (s *server) Running() bool { return s.p.running() }

// Stop stops the server gracefully (SIGTERM, or SIGINT for Postgres: a fast
// shutdown; SIGKILL after 10s) and waits for it to exit. Its ports are then
// free until Start.
func (s *server) Stop() {
	s.t.Helper()
	sig := s.stopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if s.p.signal(sig, 10*time.Second) {
		s.t.Logf("testenv: %s did not stop within 10s of %v; killed", s.p.name, sig)
	}
}

// Kill kills the server (SIGKILL), as a crash would, and waits for it to
// exit.
func (s *server) Kill() { s.p.signal(syscall.SIGKILL, 0) }

// Start starts the stopped server again on the same ports and waits until
// it is ready; what state it keeps is said by each server's type.
func (s *server) Start() {
	s.t.Helper()
	deadline := time.Now().Add(s.timeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().Before(deadline) && s.logContainsAny(s.busy) {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		s.t.Fatalf("testenv: %s: %v", s.p.name, err)
	}
}

// Restart is Stop then Start.
func (s *server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

func (s *server) start() error {
	t0 := time.Now()
	if err := s.p.startReady(s.timeout, s.ready); err != nil {
		return err
	}
	s.t.Logf("testenv: %s ready %s in %s", s.p.name, s.where(), time.Since(t0).Round(time.Millisecond))
	return nil
}

// startOnFreePorts makes the first start: pick chooses free ports and
// returns the arguments that use them. When the log says a port was taken
// meanwhile, it picks again, up to three attempts in all; it fails the test
// when none succeeds.
func (s *server) startOnFreePorts(pick func() ([]string, error)) {
	s.t.Helper()
	for attempt := 1; ; attempt++ {
		args, err := pick()
		if err != nil {
			s.t.Fatalf("testenv: %s: ports: %v", s.p.name, err)
		}
		s.p.args = args
		err = s.start()
		if err == nil {
			return
		}
		if attempt < 3 && s.p.logContains("already in use") {
			s.t.Logf("testenv: %s: a port was taken meanwhile, retrying with new ones", s.p.name)
			continue
		}
		s.t.Fatalf("testenv: %s: %v", s.p.name, err)
	}
}

func (s *server) logContainsAny(lines []string) bool {
	for _, l := range lines {
		if s.p.logContains(l) {
			return true
		}
	}
	return false
}

// logThenDial is the readiness of a server that logs line once it serves
// and then accepts TCP connections on addr.
func logThenDial(p *proc, line string, addr func() string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		if !p.logContains(line) {
			return false, nil
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr())
		if err != nil {
			return false, fmt.Errorf("dial: %w", err)
		}
		_ = c.Close()
		return true, nil
	}
}
