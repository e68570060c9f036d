package testenv

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// redisCmd connects (TLS when tlsCfg is set), sends one command and returns
// the first line of the reply ("+PONG", ":1", "-ERR ..."). testenv uses the
// standard library only, so this speaks RESP itself.
func redisCmd(addr string, tlsCfg *tls.Config, args ...string) (string, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	var c net.Conn
	var err error
	if tlsCfg != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tlsCfg)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func TestRedis(t *testing.T) {
	ca, otherCA := NewTestCA(t, "mesh CA"), NewTestCA(t, "other CA")
	srv := Redis(t, ca.ServerTLS(t))
	good := ClientTLS(t, ca, ca, "app")

	if got, err := redisCmd(srv.Addr, good, "PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING with a client certificate: %q, %v", got, err)
	}
	if got, err := redisCmd(srv.Addr, good, "INCR", "k"); err != nil || got != ":1" {
		t.Fatalf("INCR k: %q, %v; want :1", got, err)
	}
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"no TLS", nil},
		{"TLS without a client certificate", ClientTLS(t, ca, nil, "")},
		{"a certificate from another CA", ClientTLS(t, ca, otherCA, "app")},
	} {
		got, err := redisCmd(srv.Addr, tc.cfg, "PING")
		if err == nil {
			t.Errorf("%s: answered %q", tc.name, got)
			continue
		}
		t.Logf("%s: refused: %v", tc.name, err)
	}

	// Stop and Start keep the port and the data; so do Kill and Start for
	// what was written a second before.
	srv.Stop()
	if _, err := redisCmd(srv.Addr, good, "PING"); err == nil {
		t.Fatal("PING answered while stopped")
	}
	srv.Start()
	if got, err := redisCmd(srv.Addr, good, "INCR", "k"); err != nil || got != ":2" {
		t.Fatalf("INCR k after Stop and Start: %q, %v; want :2", got, err)
	}
	time.Sleep(1500 * time.Millisecond) // appendfsync everysec
	srv.Kill()
	if srv.Running() {
		t.Fatal("running after Kill")
	}
	srv.Start()
	if got, err := redisCmd(srv.Addr, good, "INCR", "k"); err != nil || got != ":3" {
		t.Fatalf("INCR k after Kill and Start: %q, %v; want :3", got, err)
	}
}
