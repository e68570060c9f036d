package main

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	vault "github.com/hashicorp/vault/api"

	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/proctest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// The fortune walkthrough in mesh mode, as separate processes on a real
// Consul and Vault: three servers and a consumer fetching continuously.
// kill -9 of one server: every fetch still succeeds, and Consul drops the
// instance once its health check lapses. The intention flipped to deny: the
// consumer is refused within 1s, with the reason. The servers then stop
// cleanly and deregister.
func TestMesh(t *testing.T) {
	csrv := testenv.Consul(t)
	vsrv := testenv.Vault(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The PKI: a CA and one role and policy per service, and a token per
	// service holding only its own policy.
	root, _ := meshtest.VaultPKI(t, ctx, vsrv, "fortune", "consumer")
	token := func(service string) string {
		s, err := root.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"ztn-" + service}})
		if err != nil {
			t.Fatal(err)
		}
		return s.Auth.ClientToken
	}

	cc := meshtest.ConsulClient(t, csrv.Addr)
	setIntention(t, cc, consul.IntentionActionAllow)

	bin := proctest.Build(t, "fortune")
	env := func(service string) []string {
		return proctest.Env(
			"CONSUL_HTTP_ADDR="+csrv.Addr,
			"VAULT_ADDR="+vsrv.HTTPAddr(),
			"VAULT_TOKEN="+token(service),
			"ZTN_PKI_MOUNT=pki",
			"ZTN_PKI_ROLE={service}",
			"ZTN_TRUST_DOMAIN=ztn.test",
			"ZTN_DATACENTER=dc1",
			"ZTN_SERVICE="+service,
		)
	}

	var servers []*proctest.Process
	for i := range 3 {
		p := proctest.Start(t, fmt.Sprintf("server-%d", i+1), bin, env("fortune"), "-mode", "server", "-addr", "127.0.0.1:0")
		servers = append(servers, p)
	}
	addrs := map[string]*proctest.Process{}
	serving := regexp.MustCompile(`^fortune: serving on (\S+)$`)
	for _, p := range servers {
		line := p.WaitLine(t, serving, 45*time.Second)
		p.Addr = serving.FindStringSubmatch(line)[1]
		addrs[p.Addr] = p
	}
	passing := func() ([]string, error) {
		entries, _, err := cc.Health().Connect("fortune", "", true, nil)
		if err != nil {
			return nil, err
		}
		var got []string
		for _, e := range entries {
			got = append(got, fmt.Sprintf("%s:%d", e.Service.Address, e.Service.Port))
		}
		slices.Sort(got)
		return got, nil
	}
	waitPassing := func(want []string, within time.Duration) time.Duration {
		t.Helper()
		slices.Sort(want)
		t0 := time.Now()
		for {
			got, err := passing()
			if err == nil && slices.Equal(got, want) {
				return time.Since(t0)
			}
			if time.Since(t0) > within {
				t.Fatalf("consul's passing instances of fortune: %v (%v), want %v", got, err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitPassing([]string{servers[0].Addr, servers[1].Addr, servers[2].Addr}, 10*time.Second)
	t.Logf("consul lists 3 passing instances: %s, %s, %s", servers[0].Addr, servers[1].Addr, servers[2].Addr)

	consumer := proctest.Start(t, "consumer", bin, env("consumer"), "-mode", "consumer", "-n", "0", "-interval", "50ms")
	fetched := regexp.MustCompile(`^-- (\d+) (\S+) (\S+):$`)
	served := func() map[string]int {
		m := map[string]int{}
		for _, l := range consumer.Lines() {
			if f := fetched.FindStringSubmatch(l.Text); f != nil {
				if f[3] != "spiffe://ztn.test/ns/default/dc/dc1/svc/fortune" {
					t.Errorf("fetch %s from %s", f[1], f[3])
				}
				m[f[2]]++
			}
		}
		return m
	}
	fetches := func() int {
		n := 0
		for _, c := range served() {
			n += c
		}
		return n
	}
	waitFetches := func(n int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for fetches() < n {
			if !consumer.Running() {
				t.Fatalf("the consumer exited: %v\n%s", consumer.ExitErr(), consumer.Output())
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d fetches after %v, want %d\n%s", fetches(), within, n, consumer.Output())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFetches(12, 30*time.Second)
	if m := served(); len(m) != 3 {
		t.Fatalf("fetches spread over %v, want the 3 instances", m)
	}

	// kill -9 one server: the consumer keeps being served; Consul drops the
	// instance when its TTL check lapses.
	victim := servers[1]
	before := fetches()
	victim.Kill(t)
	t.Logf("killed %s (%s) with SIGKILL", victim.Name, victim.Addr)
	took := waitPassing([]string{servers[0].Addr, servers[2].Addr}, 30*time.Second)
	t.Logf("consul dropped %s from the passing instances %s after the kill", victim.Addr, took.Round(100*time.Millisecond))
	waitFetches(fetches()+10, 10*time.Second)
	after := fetches() - before
	t.Logf("%d fetches since the kill, none failed; served per instance: %v", after, served())

	// An outside peer: openssl s_client with the consumer's Vault
	// certificate gets a fortune; without a certificate, or with the
	// consumer's name from another CA, it gets none.
	peer := newOpensslPeer(t, ctx, vsrv.HTTPAddr(), token("consumer"))
	if got, msgs := peer.fetch(t, servers[0].Addr, peer.cert, peer.key); got == "" {
		t.Errorf("openssl with the consumer's certificate got no fortune:\n%s", msgs)
	} else {
		t.Logf("openssl with the consumer's certificate got: %q", got)
	}
	for _, c := range []struct{ what, cert, key string }{
		{"no certificate", "", ""}, {"another CA's certificate", peer.otherCert, peer.otherKey},
	} {
		if got, msgs := peer.fetch(t, servers[0].Addr, c.cert, c.key); got != "" || !strings.Contains(msgs, "alert") {
			t.Errorf("openssl with %s: got %q, want a TLS alert and no fortune:\n%s", c.what, got, msgs)
		}
	}

	// Deny: the consumer is refused within 1s, with the reason.
	setIntention(t, cc, consul.IntentionActionDeny)
	t0 := time.Now()
	refused := regexp.MustCompile(`^fortune: fetch \d+ refused: ztnet: dial fortune: spiffe://ztn.test/ns/default/dc/dc1/svc/consumer denied: intention consumer → fortune denies`)
	line := consumer.WaitLine(t, refused, 5*time.Second)
	at := consumer.LineTime(line)
	t.Logf("refused %s after the deny was written: %s", at.Sub(t0).Round(time.Millisecond), line)
	if d := at.Sub(t0); d > time.Second {
		t.Errorf("refused %v after the deny, want within 1s", d)
	}
	if err := consumer.Wait(5 * time.Second); err == nil {
		t.Error("the refused consumer exited 0")
	}
	// The outside peer is refused too, at the handshake.
	if got, msgs := peer.fetch(t, servers[0].Addr, peer.cert, peer.key); got != "" || !strings.Contains(msgs, "alert") {
		t.Errorf("openssl with the consumer's certificate after the deny: got %q, want a TLS alert and no fortune:\n%s", got, msgs)
	}

	// The live servers stop on SIGTERM and deregister.
	for _, p := range []*proctest.Process{servers[0], servers[2]} {
		p.Signal(t, syscall.SIGTERM)
		if err := p.Wait(15 * time.Second); err != nil {
			t.Errorf("%s: %v\n%s", p.Name, err, p.Output())
		}
	}
	waitPassing(nil, 5*time.Second)
}

func setIntention(t *testing.T, c *consul.Client, action consul.IntentionAction) {
	t.Helper()
	e := &consul.ServiceIntentionsConfigEntry{Kind: consul.ServiceIntentions, Name: "fortune",
		Sources: []*consul.SourceIntention{{Name: "consumer", Action: action}}}
	if _, _, err := c.ConfigEntries().Set(e, nil); err != nil {
		t.Fatalf("intention consumer -> fortune %s: %v", action, err)
	}
}
