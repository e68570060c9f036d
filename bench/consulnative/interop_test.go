package consulnative

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/connect"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/certs/consulca"
	"github.com/ztnlabs/ztn/consul"
	"github.com/ztnlabs/ztn/internal/test/testenv"
	"github.com/ztnlabs/ztn/ztnet"
)

// Consul's own Connect-native Go client (consul/connect at the pinned
// Consul) calls a ztn listener that Consul's catalog lists as a
// Connect-native instance: the client offers ALPN "h2" on every handshake,
// and ztn serves it, authorized by the intentions in Consul. A deny written
// in Consul refuses it (at the first read, as TLS 1.3 has it for a client
// that is not ztn) within a second, and an allow lets it back in.
func TestConsulNativeClientCallsZTN(t *testing.T) {
	srv := testenv.Consul(t)
	newClient := func() *api.Client {
		c, err := api.NewClient(&api.Config{Address: srv.Addr})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	client := newClient()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const server, caller = "ztn-api", "native-web"
	setIntention := func(action api.IntentionAction) {
		t.Helper()
		entry := &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: server,
			Sources: []*api.SourceIntention{{Name: caller, Action: action}}}
		if _, _, err := client.ConfigEntries().Set(entry, nil); err != nil {
			t.Fatal(err)
		}
	}
	setIntention(api.IntentionActionAllow)

	// The ztn server: certificates from Consul's CA, intentions from Consul,
	// registered in Consul's catalog as a Connect-native instance.
	src, err := consulca.New(ctx, consulca.Config{Client: newClient(), Service: server}, certs.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	az, err := consul.NewIntentions(consul.Config{Client: newClient()}, server, consul.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = az.Close() })
	if err := az.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	reg, err := consul.NewCatalog(consul.Config{Client: newClient()}, consul.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	zsrv := ztnService(t, ctx, server, ztnet.WithSource(src), ztnet.WithAuthorizer(az), ztnet.WithRegistrar(reg))
	l, err := zsrv.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l)

	native := nativeService(t, caller, newClient())
	resolver := &connect.ConsulResolver{Client: newClient(), Name: server}
	call := func() error {
		ctx, cancel := dialCtx()
		defer cancel()
		return exchangeOne(native.Dial(ctx, resolver))
	}
	// The instance turns passing once its TTL check has run.
	deadline := time.Now().Add(30 * time.Second)
	for err := call(); err != nil; err = call() {
		if time.Now().After(deadline) {
			t.Fatalf("Consul's native client calling ztn (allowed): %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	flip := func(action api.IntentionAction, refused bool) time.Duration {
		t.Helper()
		start := time.Now()
		setIntention(action)
		for {
			err := call()
			if refused && err != nil {
				if !strings.Contains(err.Error(), "bad certificate") {
					t.Fatalf("refusal seen as %v, want the server's bad certificate alert", err)
				}
				return time.Since(start)
			}
			if !refused && err == nil {
				return time.Since(start)
			}
			if time.Since(start) > time.Second {
				t.Fatalf("intention %s not in effect after 1 s (last: %v)", action, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	denied := flip(api.IntentionActionDeny, true)
	allowed := flip(api.IntentionActionAllow, false)
	t.Logf("deny in effect after %v, allow after %v", denied, allowed)
	if err := call(); err != nil {
		t.Fatalf("allowed again: %v", err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("test ran out of time")
	}
}
