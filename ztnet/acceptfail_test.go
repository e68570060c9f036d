//go:build linux

package ztnet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// fdServerSpare is how many descriptors the server process may open above
// those it holds once listening.
const fdServerSpare = 16

// TestAcceptOutOfFileDescriptors runs a listener in a child process whose
// RLIMIT_NOFILE is lowered to what it holds plus a few (a real
// exhaustion, which a test cannot cause safely in its own process), and
// opens more connections to it than that. The listener logs one Warn naming
// the limit, not one per retry (Debug), counts each failure in
// ztn.listener.accept_failures{reason=fd_limit}, and logs at Info when it
// accepts again after the connections are closed. A client meanwhile
// connects (the kernel queues it) and hears nothing.
func TestAcceptOutOfFileDescriptors(t *testing.T) {
	server := startChild(t, "TestFDLimitServerProcess", "ZTN_FDLIMIT_SERVER=1")
	defer server.stop(t)
	var records []map[string]any
	var kv = map[string]string{}
	// next reads the child's output until cond holds on what was read.
	next := func(what string, cond func() bool) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for !cond() {
			select {
			case line, ok := <-server.lines:
				if !ok {
					t.Fatalf("server process ended before %s", what)
				}
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) == nil {
					records = append(records, rec)
				} else if k, v, ok := strings.Cut(line, " "); ok {
					kv[k] = v
				}
			case <-timeout:
				t.Fatalf("no %s from the server process", what)
			}
		}
	}
	count := func(level, msgPart string) (n int, last map[string]any) {
		for _, r := range records {
			if r["level"] == level && strings.Contains(fmt.Sprint(r["msg"]), msgPart) {
				n, last = n+1, r
			}
		}
		return n, last
	}

	next("address", func() bool { return kv["addr"] != "" && kv["fd_limit"] != "" })
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range 2 * fdServerSpare {
		c, err := net.Dial("tcp", kv["addr"])
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	next("an out of file descriptors warning and two retries", func() bool {
		n, _ := count("WARN", "out of file descriptors")
		retries, _ := count("DEBUG", "ztn accept failed; retrying")
		return n > 0 && retries >= 2
	})
	// A client meanwhile: the kernel completes its connect, nobody answers.
	c, err := net.Dial("tcp", kv["addr"])
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, c)
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Errorf("a client during the exhaustion read %v, want nothing (timeout)", err)
	}

	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	next("accepting again", func() bool { n, _ := count("INFO", "ztn accepting again"); return n > 0 })
	n, warn := count("WARN", "")
	if n != 1 {
		t.Errorf("%d Warn records, want 1: %v", n, records)
	}
	t.Logf("the warning: %v", warn)
	if got, want := fmt.Sprint(warn["fd_limit"]), kv["fd_limit"]; got != want {
		t.Errorf("the warning names fd_limit %s, want the process's %s: %v", got, want, warn)
	}
	if got, want := fmt.Sprint(warn["open_fds"]), kv["fd_limit"]; got != want {
		t.Errorf("the warning names open_fds %s, want the limit %s, reached: %v", got, want, warn)
	}
	if !strings.Contains(fmt.Sprint(warn["error"]), "too many open files") || warn["addr"] != kv["addr"] {
		t.Errorf("the warning does not name the error and the address: %v", warn)
	}
	_ = server.stdin.Close()
	next("the failure count", func() bool { return kv["accept_failures"] != "" })
	// All the logs came before the count. Accepting the queued connections
	// may have run out again, within a minute of the Warn: at Debug only.
	retries, _ := count("DEBUG", "ztn accept failed; retrying")
	if n, _ := count("WARN", ""); n != 1 {
		t.Errorf("%d Warn records in all, want 1", n)
	}
	if got, _ := strconv.Atoi(kv["accept_failures"]); got != retries+1 {
		t.Errorf("ztn.listener.accept_failures{reason=fd_limit} = %d, want %d (1 warned + %d retries)", got, retries+1, retries)
	}
}

// TestFDLimitServerProcess is TestAcceptOutOfFileDescriptors's server, in a
// process of its own; it does nothing unless run by it. It listens as api,
// lowers its RLIMIT_NOFILE to what it holds plus fdServerSpare, prints
// "addr <address>" and "fd_limit <n>", logs JSON to stdout, holds the
// connections it accepts, and when stdin closes prints
// "accept_failures <n>" and exits.
func TestFDLimitServerProcess(t *testing.T) {
	if os.Getenv("ZTN_FDLIMIT_SERVER") != "1" {
		t.Skip("the server process of TestAcceptOutOfFileDescriptors")
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := newTestMesh(t, WithLogger(logger), WithMeterProvider(mp), WithHandshakeTimeout(time.Minute))
	m.allow(t, "web->api")
	api := m.service(t, "api")
	l := listen(t, api)
	serve(t, l, echo)

	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	saved := rl
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	rl.Cur = uint64(len(fds) + fdServerSpare)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved)
	fmt.Printf("addr %s\nfd_limit %d\n", l.Addr(), rl.Cur)

	_, _ = io.Copy(io.Discard, os.Stdin)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("accept_failures %d\n", sumOf(t, rm, "ztn.listener.accept_failures", attribute.String("reason", "fd_limit")))
}
