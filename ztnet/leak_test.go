package ztnet

import (
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/poll"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(fds)
}

// TestNoLeaksAfterClose runs accepted, dialed, refused and abandoned
// connections, closes everything, and checks that no goroutine and no file
// descriptor is left behind.
func TestNoLeaksAfterClose(t *testing.T) {
	before := openFDs(t)
	preexisting := goleak.IgnoreCurrent()
	func() {
		m := newTestMesh(t, WithDevCertTTL(time.Second))
		m.allow(t, "web->api")
		api, err := m.Service(poll.Context(t, 5*time.Second), "api")
		if err != nil {
			t.Fatal(err)
		}
		web, err := m.Service(poll.Context(t, 5*time.Second), "web")
		if err != nil {
			t.Fatal(err)
		}
		intruder, err := m.Service(poll.Context(t, 5*time.Second), "intruder")
		if err != nil {
			t.Fatal(err)
		}
		l, err := api.Listen(poll.Context(t, 5*time.Second), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
			}
		}()
		var open []net.Conn
		for range 5 {
			c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, c, "x")
			open = append(open, c) // left open: Service.Close must close them
		}
		if _, err := intruder.Dial(poll.Context(t, 5*time.Second), "api"); err == nil {
			t.Fatal("intruder admitted")
		}
		silent, err := net.Dial("tcp", l.Addr().String()) // handshake in progress at Close
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // a certificate rotation or two
		for _, s := range []*Service{api, web, intruder} {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		<-done
		for _, c := range open {
			c.Close()
		}
		silent.Close()
	}()
	goleak.VerifyNone(t, preexisting)
	deadline := time.Now().Add(2 * time.Second)
	for openFDs(t) > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := openFDs(t); after > before {
		t.Fatalf("%d file descriptors open after Close, %d before", after, before)
	}
}
