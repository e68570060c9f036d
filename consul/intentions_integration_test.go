package consul_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/consul"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
	"github.com/ztnlabs/ztn/ztnet"
)

// A change of intentions in Consul closes the open connections of a pair
// it now denies within 1s, whether written as a config entry or through
// the intentions API, and new Dials of that pair are denied.
func TestIntentionsLiveRevocation(t *testing.T) {
	srv := testenv.Consul(t)
	client := meshtest.ConsulClient(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	setWeb := func(action api.IntentionAction, viaIntentionsAPI bool) {
		t.Helper()
		err := consul.RetryWrite(func() error {
			if viaIntentionsAPI {
				_, err := client.Connect().IntentionUpsert(&api.Intention{SourceName: "web", DestinationName: "api", Action: action}, nil)
				return err
			}
			e := &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: "api",
				Sources: []*api.SourceIntention{{Name: "web", Action: action}}}
			_, _, err := client.ConfigEntries().Set(e, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setWeb(api.IntentionActionAllow, false)

	cfg := consul.Config{Client: client}
	az, err := consul.NewIntentions(cfg, "api", consul.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer az.Close()
	if err := az.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := consul.NewCatalog(cfg, consul.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	ca, err := certs.NewDevCA(spiffeid.RequireTrustDomainFromString("ztn.test"))
	if err != nil {
		t.Fatal(err)
	}
	newService := func(name string, opts ...ztnet.Option) *ztnet.Service {
		src, err := ca.Source(ctx, "dc1", name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = src.Close() })
		s, err := ztnet.New(ctx, name, append([]ztnet.Option{ztnet.WithSource(src), ztnet.WithLogger(quiet)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	apiSvc := newService("api", ztnet.WithAuthorizer(az), ztnet.WithRegistrar(d))
	l, err := apiSvc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	web := newService("web", ztnet.WithResolver(d))

	var worst time.Duration
	for round := range 4 {
		viaAPI := round%2 == 1
		var conn net.Conn
		deadline := time.Now().Add(10 * time.Second)
		for {
			conn, err = web.Dial(ctx, "api")
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond) // allow not synced yet, or instance not yet seen
		}
		if err != nil {
			t.Fatalf("round %d: dial: %v", round, err)
		}
		if err := echo(conn); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		closed := make(chan time.Time, 1)
		go func() {
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := conn.Read(make([]byte, 1))
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				closed <- time.Now()
			}
			close(closed)
		}()
		t0 := time.Now()
		setWeb(api.IntentionActionDeny, viaAPI)
		at, ok := <-closed
		if !ok {
			t.Fatalf("round %d: connection still open 5s after the deny", round)
		}
		took := at.Sub(t0)
		worst = max(worst, took)
		t.Logf("round %d (intentions API %v): connection closed %s after the deny was written", round, viaAPI, took.Round(time.Millisecond))
		if took > time.Second {
			t.Fatalf("round %d: connection closed after %s; want within 1s", round, took)
		}
		_ = conn.Close()
		if _, err := web.Dial(ctx, "api"); !isDenied(err) {
			t.Fatalf("round %d: dial after the deny: %v", round, err)
		}
		setWeb(api.IntentionActionAllow, viaAPI)
	}
	t.Logf("worst revocation latency %s", worst.Round(time.Millisecond))
}
