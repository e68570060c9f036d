package ztnet

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/poll"
)

// recordingRelay forwards TCP between clients and target and keeps a copy of
// every byte in both directions, like tcpdump on the wire.
type recordingRelay struct {
	l      net.Listener
	mu     sync.Mutex
	wire   bytes.Buffer
	wg     sync.WaitGroup
	target string
}

func newRecordingRelay(t *testing.T, target string) *recordingRelay {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recordingRelay{l: l, target: target}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			r.wg.Add(2)
			go r.pipe(c, s)
			go r.pipe(s, c)
		}
	}()
	t.Cleanup(func() { l.Close(); r.wg.Wait() })
	return r
}

func (r *recordingRelay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			r.wire.Write(buf[:n])
			r.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

func (r *recordingRelay) captured() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.wire.Bytes())
}

func TestPayloadNeverCrossesInPlaintext(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->fortune")
	fortune := m.service(t, "fortune")
	web := m.service(t, "web")
	const secret = "You will be audited by a very thorough zero-trust relay."
	l, err := fortune.Listen(poll.Context(t, 5*time.Second), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, func(c net.Conn) { io.WriteString(c, secret) })
	relay := newRecordingRelay(t, l.Addr().String())
	// Point the catalog at the relay only.
	m.Catalog().Set("fortune", instanceAt("relay", relay.l.Addr().String()))

	for range 3 {
		c, err := web.Dial(poll.Context(t, 5*time.Second), "fortune")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != secret {
			t.Fatalf("got %q", got)
		}
	}
	wire := relay.captured()
	if len(wire) < 3*len(secret) {
		t.Fatalf("relay saw only %d bytes", len(wire))
	}
	if bytes.Contains(wire, []byte(secret)) || bytes.Contains(wire, []byte("thorough zero-trust")) {
		t.Fatal("the payload crossed the wire in plaintext")
	}
	if wire[0] != 0x16 || wire[1] != 0x03 {
		t.Fatalf("wire does not start with a TLS handshake record: % x", wire[:3])
	}
}
