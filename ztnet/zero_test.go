package ztnet

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/test/zerotest"
)

// Values not made by their constructor fail with an error that names the
// constructor; none panics.
func TestZeroValuesFailCleanly(t *testing.T) {
	errs := zerotest.Methods(t, &Service{}, &Dev{})
	for _, name := range []string{"*ztnet.Service.Listen", "*ztnet.Service.Dial",
		"*ztnet.Service.Ready", "*ztnet.Service.Close", "*ztnet.Dev.Service"} {
		if err := errs[name]; err == nil || !strings.Contains(err.Error(), "not created with") {
			t.Errorf("%s: error %v, want one saying it was not created with its constructor", name, err)
		}
	}
	if _, err := (&Service{}).dialAddress(context.Background(), "api", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "not created with") {
		t.Errorf("dialAddress on a zero Service: %v, want an error saying it was not created with New", err)
	}
	if d := (&Service{}).authorizeRequest(context.Background(), ztn.ServiceID{}, &authz.HTTPRequest{Path: "/"}); d.Allowed {
		t.Error("AuthorizeRequest on a zero Service allows")
	}
	var nilSvc *Service
	if _, err := nilSvc.Dial(context.Background(), "api"); err == nil {
		t.Error("Dial on a nil *Service succeeded")
	}
}

// A typed nil given to an option is refused by New, not found later by a
// background goroutine.
func TestNewRefusesTypedNils(t *testing.T) {
	m := newTestMesh(t)
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"WithAuthorizer", WithAuthorizer((*authz.Policy)(nil))},
		{"WithResolver", WithResolver((*nilResolver)(nil))},
		{"WithHandshakeTimeout", WithHandshakeTimeout(-time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := m.Service(context.Background(), "web", tc.opt)
			if err == nil {
				s.Close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("error %v does not name %s", err, tc.name)
			}
		})
	}
}

type nilResolver struct{}

func (*nilResolver) Resolve(context.Context, string) ([]discovery.Instance, error) { return nil, nil }

// WithHandshakeTimeout(0) means the default, not "every handshake fails".
func TestHandshakeTimeoutZeroIsDefault(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api", WithHandshakeTimeout(0))
	web := m.service(t, "web", WithHandshakeTimeout(0))
	serve(t, listen(t, api), echo)
	c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatalf("Dial with WithHandshakeTimeout(0) on both ends: %v", err)
	}
	roundTrip(t, c, "x")
	c.Close()
}

// A listener runs at most WithMaxConcurrentHandshakes handshakes at once:
// silent clients holding every slot keep a good client waiting until one
// of them goes away.
func TestMaxConcurrentHandshakes(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api", WithMaxConcurrentHandshakes(2))
	web := m.service(t, "web")
	l := listen(t, api)
	serve(t, l, echo)
	var silent []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	time.Sleep(100 * time.Millisecond) // both accepted and handshaking
	if _, err := web.Dial(poll.Context(t, 300*time.Millisecond), "api"); err == nil {
		t.Fatal("a third handshake ran while two silent clients held both slots")
	}
	silent[0].Close() // its handshake fails at once and frees a slot
	c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatalf("Dial after a slot was freed: %v", err)
	}
	roundTrip(t, c, "x")
	c.Close()
}

// After Close, Dial, DialAddress and Listen fail with net.ErrClosed (not
// "no trust bundle" or "no healthy instance"), and a closed Dev mesh closes
// its services and makes no more.
func TestClosedServiceAndDev(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api := m.service(t, "api")
	serve(t, listen(t, api), echo)
	web, err := m.Service(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if err := web.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := web.Dial(poll.Context(t, 5*time.Second), "api"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Dial after Close: %v, want net.ErrClosed", err)
	}
	if _, err := web.dialAddress(poll.Context(t, 5*time.Second), "api", "127.0.0.1:1"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("DialAddress after Close: %v, want net.ErrClosed", err)
	}
	if _, err := web.Listen(context.Background(), "tcp", "127.0.0.1:0"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Listen after Close: %v, want net.ErrClosed", err)
	}

	other, err := m.Service(context.Background(), "other")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := api.Ready(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("api after Dev.Close: Ready = %v, want closed", err)
	}
	if err := other.Ready(); err == nil {
		t.Error("other still ready after Dev.Close")
	}
	if _, err := m.Service(context.Background(), "late"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Service after Dev.Close: %v, want net.ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
