package ztnet

import (
	"bytes"
	"crypto/tls"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/poll"
)

// sessionState returns a real session state, taken from a resumed
// connection's ticket round trip through a sealer.
func testSession(t testing.TB) *tls.SessionState {
	t.Helper()
	ss, err := tls.ParseSessionState(testSessionBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// testSessionBytes captures the serialized session state a real server
// handshake produces.
func testSessionBytes(t testing.TB) []byte {
	t.Helper()
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	web := m.service(t, "web")
	var captured []byte
	wrap := api.tickets.wrap
	got := make(chan []byte, 1)
	api.serverTLS.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		b, err := ss.Bytes()
		if err == nil {
			select {
			case got <- b:
			default:
			}
		}
		return wrap(cs, ss)
	}
	serve(t, listen(t, api), echo)
	c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "x")
	c.Close()
	select {
	case captured = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no session ticket issued")
	}
	return captured
}

func TestTicketSealer(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	ts := &ticketSealer{now: clock.Now}
	ss := testSession(t)
	want, _ := ss.Bytes()
	open := func(ticket []byte) []byte {
		t.Helper()
		got, err := ts.unwrap(ticket, tls.ConnectionState{})
		if err != nil {
			t.Fatalf("unwrap returned an error (it must return no session instead): %v", err)
		}
		if got == nil {
			return nil
		}
		b, err := got.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	seal := func() []byte {
		t.Helper()
		b, err := ts.wrap(tls.ConnectionState{}, ss)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t1 := seal()
	if got := open(t1); !bytes.Equal(got, want) {
		t.Fatal("a fresh ticket does not open to its session")
	}
	if t2 := seal(); bytes.Equal(t1, t2) {
		t.Fatal("two tickets for the same session are identical (nonce reuse)")
	}
	if bytes.Contains(t1, want[len(want)-32:]) {
		t.Fatal("the ticket carries session bytes in the clear")
	}

	// Tampering anywhere (key ID, nonce, ciphertext, tag) or truncating
	// yields no session.
	for _, i := range []int{0, ticketKeyIDLen, ticketKeyIDLen + 12, len(t1) / 2, len(t1) - 1} {
		bad := bytes.Clone(t1)
		bad[i] ^= 1
		if open(bad) != nil {
			t.Errorf("ticket with byte %d flipped opened", i)
		}
	}
	for _, n := range []int{0, 1, ticketKeyIDLen, ticketKeyIDLen + 12, len(t1) - 1} {
		if open(t1[:n]) != nil {
			t.Errorf("ticket truncated to %d bytes opened", n)
		}
	}
	other := &ticketSealer{now: clock.Now}
	if got, _ := other.unwrap(t1, tls.ConnectionState{}); got != nil {
		t.Error("another service's sealer opened the ticket")
	}

	// Rotation: after one period a new key seals, the old one still opens;
	// after two, the first ticket no longer opens.
	clock.Add(ticketKeyPeriod)
	t3 := seal()
	if bytes.Equal(t3[:ticketKeyIDLen], t1[:ticketKeyIDLen]) {
		t.Fatal("key not rotated after a period")
	}
	if open(t1) == nil || open(t3) == nil {
		t.Fatal("tickets of the current and the previous key must open")
	}
	clock.Add(ticketKeyPeriod - time.Second)
	if open(t1) == nil {
		t.Fatal("a ticket younger than two periods did not open")
	}
	clock.Add(time.Second)
	if open(t1) != nil {
		t.Fatal("a ticket two periods old opened")
	}
	if open(t3) == nil {
		t.Fatal("the previous key's ticket must still open")
	}
}

// FuzzTicketUnwrap: arbitrary bytes offered as a ticket never panic and
// never yield a session; a real ticket with bytes appended does not either.
func FuzzTicketUnwrap(f *testing.F) {
	ts := &ticketSealer{now: time.Now}
	ss := testSession(f)
	real, err := ts.wrap(tls.ConnectionState{}, ss)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real)
	f.Add(real[:ticketKeyIDLen])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ts.unwrap(b, tls.ConnectionState{})
		if err != nil {
			t.Fatalf("unwrap error: %v", err)
		}
		if got != nil && !bytes.Equal(b, real) {
			t.Fatalf("a forged ticket of %d bytes opened", len(b))
		}
	})
}
