package ztnet

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"testing"
)

// child is the test binary re-run as one of its tests in a process of its
// own, for what a test cannot do in its own process (lower its file
// descriptor limit, hold more descriptors than one process may). The test
// it runs checks env and does nothing without it.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // its stdout, line by line; closed at its end
}

// startChild runs test (a name) with env ("NAME=1") set.
func startChild(t testing.TB, test, env string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 1024)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	return c
}

// stop closes the child's stdin, which tells it to end, and waits for it.
func (c *child) stop(t testing.TB) {
	_ = c.stdin.Close()
	for range c.lines { // until its stdout closes
	}
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("%s: %v", c.cmd.Args[1], err)
	}
}
