package testenv

import (
	"fmt"
	"net"
	"strconv"
	"testing"
)

// FreePort returns a port on 127.0.0.1 that is free for both TCP and UDP right
// now. Another process may still take it before it is used: prefer letting
// the server bind port 0 where it can.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, "127.0.0.1", 1)[0]
}

// FreePorts returns n distinct ports on the loopback address host, each free
// for both TCP and UDP (Consul's serf and DNS listen on both).
func FreePorts(t testing.TB, host string, n int) []int {
	t.Helper()
	ports, err := freePorts(host, n, false)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return ports
}

// freePorts picks n distinct free ports on host. With pair, port+1 must be
// free too (Vault's dev server puts its cluster listener there) and is
// reserved as well.
func freePorts(host string, n int, pair bool) ([]int, error) {
	var held []func() error
	defer func() {
		for _, c := range held {
			_ = c()
		}
	}()
	// hold binds every port taken so far so that later picks differ.
	hold := func(port int) bool {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		tl, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		ul, err := net.ListenPacket("udp", addr)
		if err != nil {
			_ = tl.Close()
			return false
		}
		held = append(held, tl.Close, ul.Close)
		return true
	}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("no %d free ports on %s", n, host)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", host, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !hold(port) {
			continue
		}
		if pair && (port == 65535 || !hold(port+1)) {
			continue
		}
		ports = append(ports, port)
	}
	return ports, nil
}
