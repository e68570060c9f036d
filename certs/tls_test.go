package certs

import (
	"bufio"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// TestTLSAcrossRotations runs mutual TLS between two Rotators of one DevCA
// with go-spiffe's tlsconfig while their leaves renew (TTL 4s) and the root
// rotates twice: every new connection succeeds, and a connection established
// at the start keeps working.
func TestTLSAcrossRotations(t *testing.T) {
	ca := newTestCA(t)
	opts := []Option{WithRootChangeWindow(500 * time.Millisecond)}
	server := newTestSource(t, ca, "api", 4*time.Second, opts...)
	client := newTestSource(t, ca, "web", 4*time.Second, opts...)
	apiID := spiffeid.RequireFromString("spiffe://ztn.test/ns/default/dc/dc1/svc/api")
	webID := spiffeid.RequireFromString("spiffe://ztn.test/ns/default/dc/dc1/svc/web")

	ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsconfig.MTLSServerConfig(server, server, tlsconfig.AuthorizeID(webID)))
	if err != nil {
		t.Fatal(err)
	}
	var serverErrs atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				if err := conn.(*tls.Conn).Handshake(); err != nil {
					serverErrs.Add(1)
					t.Errorf("server handshake: %v", err)
					return
				}
				_, _ = io.Copy(conn, conn) // echo
			})
		}
	})
	defer func() { // after the clients have closed their connections
		ln.Close()
		wg.Wait()
	}()

	dialer := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		Config:    tlsconfig.MTLSClientConfig(client, client, tlsconfig.AuthorizeID(apiID)),
	}
	echo := func(conn net.Conn, msg string) error {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintln(conn, msg); err != nil {
			return err
		}
		got, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return err
		}
		if got != msg+"\n" {
			return fmt.Errorf("echo %q, want %q", got, msg)
		}
		return nil
	}

	long, err := dialer.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	if err := echo(long, "first"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	rotateAt := []time.Duration{1500 * time.Millisecond, 4 * time.Second}
	serials, issuers := map[string]bool{}, map[string]bool{}
	var n int
	for time.Since(start) < 6*time.Second {
		if len(rotateAt) > 0 && time.Since(start) >= rotateAt[0] {
			if err := ca.RotateRoot(); err != nil {
				t.Fatal(err)
			}
			rotateAt = rotateAt[1:]
		}
		n++
		conn, err := dialer.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("connection %d at %v: dial: %v", n, time.Since(start), err)
		}
		err = echo(conn, "ping")
		peer := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
		conn.Close()
		if err != nil {
			t.Fatalf("connection %d at %v: %v", n, time.Since(start), err)
		}
		serials[peer.SerialNumber.String()] = true
		issuers[hex.EncodeToString(peer.AuthorityKeyId)] = true
		time.Sleep(5 * time.Millisecond)
	}
	if err := echo(long, "still there"); err != nil {
		t.Fatalf("established connection broken by rotation: %v", err)
	}
	t.Logf("%d connections, %d server leaves, %d signing roots", n, len(serials), len(issuers))
	if len(serials) < 3 || len(issuers) < 3 {
		t.Errorf("saw %d server leaves under %d roots, want renewals under all three roots", len(serials), len(issuers))
	}
	if serverErrs.Load() > 0 {
		t.Errorf("%d server-side handshake failures", serverErrs.Load())
	}
}
