// Package proctest runs the command under test as separate processes, as
// its users would (mesh-mode tests of the examples): it builds the command,
// starts processes with their own environment, keeps their output lines
// with the time each arrived, waits for lines, and kills or signals them.
// Test support only.
package proctest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Env returns this process's environment without the variables of Consul,
// Vault and ztn (CONSUL_*, VAULT_*, ZTN_*), plus kv ("NAME=value"): what
// a process of the mesh under test should see.
func Env(kv ...string) []string {
	var e []string
	for _, v := range os.Environ() {
		if !strings.HasPrefix(v, "CONSUL_") && !strings.HasPrefix(v, "VAULT_") && !strings.HasPrefix(v, "ZTN_") {
			e = append(e, v)
		}
	}
	return append(e, kv...)
}

// Build builds the command in the current directory (a test's package
// directory) into the test's temporary directory and returns its path. The
// test is skipped when there is no go command.
func Build(t testing.TB, name string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the example: %v", err)
	}
	bin := filepath.Join(t.TempDir(), name)
	t0 := time.Now()
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %s", name, time.Since(t0).Round(100*time.Millisecond))
	return bin
}

// Process is a running process whose output lines are kept, with
// the time each arrived.
type Process struct {
	// Name names the process in logs and errors.
	Name string
	// Addr is free for the test's use (the address it serves on, say).
	Addr string

	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu  sync.Mutex
	out []Line
}

// Line is a line of the process's output (stdout and stderr) and when it
// arrived.
type Line struct {
	At   time.Time
	Text string
}

// Start starts bin with args and env (the whole environment: see Env),
// keeping its output. It is killed when the test ends, and its output logged
// if the test failed.
func Start(t testing.TB, name, bin string, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		readers.Go(func() {
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				p.mu.Lock()
				p.out = append(p.out, Line{time.Now(), sc.Text()})
				p.mu.Unlock()
			}
		})
	}
	go func() {
		readers.Wait() // Wait must follow the pipes' reads
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.Running() {
			_ = p.cmd.Process.Kill()
		}
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", p.Name, p.Output())
		}
	})
	return p
}

// Lines returns the output so far.
func (p *Process) Lines() []Line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.out)
}

// Output returns the output so far, each line with its time.
func (p *Process) Output() string {
	var b strings.Builder
	for _, l := range p.Lines() {
		fmt.Fprintf(&b, "  %s %s\n", l.At.Format("15:04:05.000"), l.Text)
	}
	return b.String()
}

// LineTime returns when the line text arrived (zero if it did not).
func (p *Process) LineTime(text string) time.Time {
	for _, l := range p.Lines() {
		if l.Text == text {
			return l.At
		}
	}
	return time.Time{}
}

// WaitLine waits for a line matching re and returns it; it fails the
// test after within.
func (p *Process) WaitLine(t testing.TB, re *regexp.Regexp, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, l := range p.Lines() {
			if re.MatchString(l.Text) {
				return l.Text
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no line matching %s within %v (exited: %v)\n%s", p.Name, re, within, !p.Running(), p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ExitErr is the exit error of a process that exited (nil while it runs).
func (p *Process) ExitErr() error {
	if p.Running() {
		return nil
	}
	return p.err
}

// Kill kills the process with SIGKILL and waits for it to exit.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	p.Signal(t, syscall.SIGKILL)
	<-p.done
}

// Signal sends sig to the process.
func (p *Process) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
}

// Wait waits for the process to exit and returns its error.
func (p *Process) Wait(within time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		return fmt.Errorf("%s still running after %v", p.Name, within)
	}
}
