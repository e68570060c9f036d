package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tailLines is how much of a server's log a failed test shows.
const tailLines = 50

// proc is one server process that can be stopped and started again with the
// same arguments; its output is appended to one log file across starts.
type proc struct {
	t       testing.TB
	name    string
	bin     string
	args    []string
	env     []string
	dir     string
	logPath string
	// attr, when set, replaces sysProcAttr() (e.g. to run as another user).
	attr *syscall.SysProcAttr

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	waitErr error
	starts  int
}

func newProc(t testing.TB, name, bin, dir string, args, env []string) *proc {
	p := &proc{t: t, name: name, bin: bin, args: args, env: env, dir: dir,
		logPath: dir + "/" + name + ".log"}
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL, 0)
		if t.Failed() {
			t.Logf("testenv: %s log (last %d lines of %s):\n%s", name, tailLines, p.logPath, p.tail(tailLines))
		}
	})
	return p
}

// start launches the process; it fails if it is running.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s is already running (pid %d)", p.name, p.cmd.Process.Pid)
		}
	}
	logf, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	p.starts++
	fmt.Fprintf(logf, "=== testenv: start #%d at %s: %s %s\n", p.starts,
		time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))

	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if p.attr != nil {
		cmd.SysProcAttr = p.attr
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.waitErr = cmd, done, nil
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// exited returns a channel closed when the current process exits (nil if
// never started).
func (p *proc) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

func (p *proc) running() bool {
	done := p.exited()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// signal sends sig and waits for the exit; after grace (if > 0) it sends
// SIGKILL. It reports whether the process had to be killed.
func (p *proc) signal(sig syscall.Signal, grace time.Duration) (killed bool) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
	}
	_ = cmd.Process.Signal(sig)
	if sig != syscall.SIGKILL && grace > 0 {
		select {
		case <-done:
			return false
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			killed = true
		}
	}
	<-done
	return killed
}

// tail returns the last n lines of the log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	b = bytes.TrimRight(b, "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// logContains reports whether the log (since the last start) contains s.
func (p *proc) logContains(s string) bool {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return false
	}
	if i := bytes.LastIndex(b, []byte("=== testenv: start #")); i >= 0 {
		b = b[i:]
	}
	return bytes.Contains(b, []byte(s))
}

// cleanEnv is the test's environment without variables starting with any of
// the prefixes (so CONSUL_HTTP_TOKEN or VAULT_ADDR from the developer's shell
// do not leak into the servers), plus extra.
func cleanEnv(prefixes []string, extra ...string) []string {
	var env []string
outer:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue outer
			}
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// stop stops the process gracefully (SIGTERM; SIGKILL after 10s) and waits
// for it to exit.
func (p *proc) stop() {
	p.t.Helper()
	if p.signal(syscall.SIGTERM, 10*time.Second) {
		p.t.Logf("testenv: %s did not stop within 10s of SIGTERM; killed", p.name)
	}
}

// startReady starts the process and waits up to timeout for ready; a process
// that does not get ready is killed, and the error names its log.
func (p *proc) startReady(timeout time.Duration, ready func(ctx context.Context) (bool, error)) error {
	if err := p.start(); err != nil {
		return err
	}
	err := waitFor(timeout, p.exited(), ready)
	if err != nil {
		p.signal(syscall.SIGKILL, 0)
		if e := p.exitErr(); e != nil {
			err = fmt.Errorf("%w (%v)", err, e)
		}
		return fmt.Errorf("%w; log %s", err, p.logPath)
	}
	return nil
}
