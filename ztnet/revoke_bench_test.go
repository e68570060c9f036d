package ztnet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/discovery"
)

// revokeConns is how many open connections BenchmarkRevoke cuts at once.
const revokeConns = 10000

// BenchmarkRevoke measures how long a policy change takes to cut
// revokeConns (10,000) open connections that it now denies: from
// Policy().Set until every server-side Read on them has failed (cut), and
// until the listener's Service has closed them all (closed), reported as
// ms-cut/10k and ms-closed/10k; peers-closed is when the clients, in another
// process, have all seen their connection end. The clients live in a child
// process (the test binary re-run as TestRevokeDialerProcess) because both
// ends of 10,000 connections would need more file descriptors than a
// process usually gets. ns/op covers the whole cycle, dialing included;
// one iteration takes about 10s, so the default -benchtime runs it once.
func BenchmarkRevoke(b *testing.B) {
	for b.Loop() {
		cut, closed, peers := revokeOnce(b, revokeConns)
		b.ReportMetric(float64(cut.Microseconds())/1000, "ms-cut/10k")
		b.ReportMetric(float64(closed.Microseconds())/1000, "ms-closed/10k")
		b.ReportMetric(float64(peers.Microseconds())/1000, "ms-peers-closed/10k")
	}
}

// revokeOnce opens n connections from web (in a child process) to api,
// denies web, and returns how long cutting and closing them took.
func revokeOnce(b *testing.B, n int) (cut, closed, peers time.Duration) {
	m := newTestMesh(b, WithLogger(discardLogger), WithMeterProvider(noop.NewMeterProvider()))
	m.allow(b, "web->api")
	api := m.service(b, "api")
	l := listen(b, api)

	var accepted, failed sync.WaitGroup
	accepted.Add(n)
	failed.Add(n)
	var acceptDone sync.WaitGroup
	acceptDone.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Done()
			go func() {
				_, _ = io.Copy(io.Discard, c) // until the revocation cuts it
				failed.Done()
			}()
		}
	})
	defer func() { _ = l.Close(); acceptDone.Wait() }()

	child := startDialer(b, m, l.Addr().String(), n)
	defer child.stop(b)
	expect(b, child, "ready", 5*time.Minute)
	accepted.Wait()

	start := time.Now()
	m.allow(b, "other->api") // web is denied from now on
	failed.Wait()
	cut = time.Since(start)
	for {
		api.mu.Lock()
		left := len(api.conns)
		api.mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	closed = time.Since(start)
	expect(b, child, "closed", time.Minute)
	peers = time.Since(start)
	return cut, closed, peers
}

// dialerSpec is what the parent sends the dialer process on its stdin: the
// key travels through the pipe, never through a file.
type dialerSpec struct {
	Addr   string
	N      int
	TD     string
	Certs  []byte
	Key    []byte
	Bundle []byte
}

// startDialer re-runs the test binary as TestRevokeDialerProcess, which
// dials api n times as web with a certificate of m's CA.
func startDialer(b *testing.B, m *testMesh, addr string, n int) *child {
	b.Helper()
	id, err := m.CA().Issuer("dc1", "web", time.Hour).Issue(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	certsPEM, keyPEM, err := id.SVID.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	bundlePEM, err := m.CA().Bundle().Marshal()
	if err != nil {
		b.Fatal(err)
	}
	spec, _ := json.Marshal(dialerSpec{Addr: addr, N: n, TD: m.CA().TrustDomain().Name(), Certs: certsPEM, Key: keyPEM, Bundle: bundlePEM})
	c := startChild(b, "TestRevokeDialerProcess", "ZTN_REVOKE_DIALER=1")
	if _, err := c.stdin.Write(append(spec, '\n')); err != nil {
		b.Fatal(err)
	}
	return c
}

// expect waits for the dialer to print want.
func expect(b *testing.B, c *child, want string, timeout time.Duration) {
	b.Helper()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				b.Fatalf("dialer process ended before %q", want)
			}
			if line == want {
				return
			}
			if strings.HasPrefix(line, "error ") {
				b.Fatalf("dialer process: %s", line)
			}
		case <-t.C:
			b.Fatalf("dialer process: no %q after %v", want, timeout)
		}
	}
}

// TestRevokeDialerProcess is BenchmarkRevoke's client side, in a process of
// its own; it does nothing unless run by startDialer. It reads a dialerSpec
// from stdin, dials the address N times as web, prints "ready", reads every
// connection until it ends, prints "closed", and exits when stdin closes.
func TestRevokeDialerProcess(t *testing.T) {
	if os.Getenv("ZTN_REVOKE_DIALER") != "1" {
		t.Skip("the client process of BenchmarkRevoke")
	}
	say := func(format string, args ...any) { fmt.Fprintf(os.Stdout, format+"\n", args...) }
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadBytes('\n')
	var spec dialerSpec
	if err == nil {
		err = json.Unmarshal(line, &spec)
	}
	if err != nil {
		say("error reading the spec: %v", err)
		t.Fatal(err)
	}
	svc, err := dialerService(spec)
	if err != nil {
		say("error %v", err)
		t.Fatal(err)
	}
	defer svc.Close()

	conns := make(chan net.Conn, spec.N)
	var dialErr atomic.Value
	var dialers sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		dialers.Go(func() {
			for next.Add(1) <= int64(spec.N) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				c, err := svc.Dial(ctx, "api")
				cancel()
				if err != nil {
					dialErr.Store(err)
					return
				}
				conns <- c
			}
		})
	}
	dialers.Wait()
	close(conns)
	if err, _ := dialErr.Load().(error); err != nil {
		say("error dial: %v", err)
		for c := range conns {
			_ = c.Close()
		}
		t.Fatal(err)
	}
	var ended sync.WaitGroup
	for c := range conns {
		ended.Go(func() {
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
		})
	}
	say("ready")
	ended.Wait()
	say("closed")
	_, _ = io.Copy(io.Discard, in) // until the parent closes stdin
}

// dialerService makes web's Service from a spec: a static source of the
// certificate and bundle given, api at spec.Addr.
func dialerService(spec dialerSpec) (*Service, error) {
	td, err := spiffeid.TrustDomainFromString(spec.TD)
	if err != nil {
		return nil, err
	}
	svid, err := x509svid.Parse(spec.Certs, spec.Key)
	if err != nil {
		return nil, err
	}
	bundle, err := x509bundle.Parse(td, spec.Bundle)
	if err != nil {
		return nil, err
	}
	src, err := certs.NewStatic(svid, bundle)
	if err != nil {
		return nil, err
	}
	return New(context.Background(), "web",
		WithSource(src),
		WithResolver(discovery.NewStatic(map[string][]discovery.Instance{"api": {{ID: "api", Address: spec.Addr}}})),
		WithLogger(discardLogger), WithMeterProvider(noop.NewMeterProvider()))
}
