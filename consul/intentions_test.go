package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/poll"

	"github.com/hashicorp/consul/api"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ztnlabs/ztn/internal/test/testenv"
)

func TestParseDestination(t *testing.T) {
	for in, want := range map[string]authz.Selector{
		"api":          {Partition: ztn.DefaultPartition, Namespace: ztn.DefaultNamespace, Name: "api"},
		"prod/api":     {Partition: ztn.DefaultPartition, Namespace: "prod", Name: "api"},
		"ap1/prod/api": {Partition: "ap1", Namespace: "prod", Name: "api"},
	} {
		if got, err := parseDestination(in); err != nil || got != want {
			t.Errorf("parseDestination(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "*", "ns/*", "a//b", "a/b/c/d", "api*"} {
		if _, err := parseDestination(in); err == nil {
			t.Errorf("parseDestination(%q) accepted", in)
		}
	}
	if _, err := NewIntentions(Config{}, "api"); err == nil || err.Error() != "consul: intentions: nil Config.Client" {
		t.Errorf("NewIntentions without a client = %v", err)
	}
	if _, err := NewIntentions(Config{Client: &api.Client{}}, "*"); err == nil || !strings.HasPrefix(err.Error(), "consul: intentions: destination") {
		t.Errorf("NewIntentions(*) = %v", err)
	}
}

// Conversion of what /match returns: what ztn cannot enforce becomes a
// deny, never an allow.
func TestIntentionsConvertIntention(t *testing.T) {
	dst := authz.Selector{Partition: ztn.DefaultPartition, Namespace: ztn.DefaultNamespace, Name: "api"}
	base := func(mod func(*api.Intention)) *api.Intention {
		ixn := &api.Intention{SourceNS: "default", SourceName: "web", DestinationNS: "default", DestinationName: "api",
			SourceType: api.IntentionSourceConsul, Action: api.IntentionActionAllow, Precedence: 9}
		if mod != nil {
			mod(ixn)
		}
		return ixn
	}
	l7 := func(perms ...*api.IntentionPermission) func(*api.Intention) {
		return func(ixn *api.Intention) { ixn.Action, ixn.Permissions = "", perms }
	}
	get := &api.IntentionHTTPPermission{PathPrefix: "/x", Methods: []string{"GET"}}
	for _, tc := range []struct {
		name       string
		ixn        *api.Intention
		jwt        entryJWT
		wantAction authz.Action
		wantPerms  []authz.Action
		wantWarn   string
		wantPeer   string
		wantErr    string
	}{
		{name: "allow", ixn: base(nil), wantAction: authz.ActionAllow},
		{name: "deny", ixn: base(func(i *api.Intention) { i.Action = api.IntentionActionDeny }), wantAction: authz.ActionDeny},
		{name: "L7", ixn: base(l7(&api.IntentionPermission{Action: "allow", HTTP: get})), wantPerms: []authz.Action{authz.ActionAllow}},
		{name: "peer source", ixn: base(func(i *api.Intention) { i.SourcePeer = "other-cluster" }), wantAction: authz.ActionAllow, wantPeer: "other-cluster"},
		{name: "peer source, default partition", ixn: base(func(i *api.Intention) { i.SourcePeer, i.SourcePartition = "other-cluster", "default" }),
			wantAction: authz.ActionAllow, wantPeer: "other-cluster"},
		{name: "peer source L7", ixn: base(func(i *api.Intention) {
			i.SourcePeer = "other-cluster"
			l7(&api.IntentionPermission{Action: "allow", HTTP: get})(i)
		}), wantPerms: []authz.Action{authz.ActionAllow}, wantPeer: "other-cluster"},
		{name: "peer source JWT", ixn: base(func(i *api.Intention) { i.SourcePeer = "other-cluster" }),
			jwt:        entryJWT{sources: map[authz.Selector]bool{{Partition: ztn.DefaultPartition, Namespace: ztn.DefaultNamespace, Name: "web", Peer: "other-cluster"}: true}},
			wantAction: authz.ActionDeny, wantWarn: "source requires a JWT", wantPeer: "other-cluster"},
		{name: "local source's JWT, peer source", ixn: base(func(i *api.Intention) { i.SourcePeer = "other-cluster" }),
			jwt:        entryJWT{sources: map[authz.Selector]bool{{Partition: ztn.DefaultPartition, Namespace: ztn.DefaultNamespace, Name: "web"}: true}},
			wantAction: authz.ActionAllow, wantPeer: "other-cluster"},
		{name: "peer source with a partition", ixn: base(func(i *api.Intention) { i.SourcePeer, i.SourcePartition = "other-cluster", "ap1" }),
			wantErr: "Peer and Partition"},
		{name: "sameness group", ixn: base(func(i *api.Intention) { i.SourceSamenessGroup = "sg" }), wantErr: "sameness-group"},
		{name: "entry JWT", ixn: base(nil), jwt: entryJWT{entry: true}, wantAction: authz.ActionDeny, wantWarn: "entry requires a JWT"},
		{name: "source JWT", ixn: base(nil), jwt: entryJWT{sources: map[authz.Selector]bool{{Partition: ztn.DefaultPartition, Namespace: ztn.DefaultNamespace, Name: "web"}: true}},
			wantAction: authz.ActionDeny, wantWarn: "source requires a JWT"},
		{name: "other source's JWT", ixn: base(nil), jwt: entryJWT{sources: map[authz.Selector]bool{{Partition: ztn.DefaultPartition, Namespace: ztn.DefaultNamespace, Name: "db"}: true}},
			wantAction: authz.ActionAllow},
		{name: "deny with JWT", ixn: base(func(i *api.Intention) { i.Action = api.IntentionActionDeny }), jwt: entryJWT{entry: true}, wantAction: authz.ActionDeny},
		{name: "unverifiable entry", ixn: base(nil), jwt: entryJWT{unverified: "no intentions:read"}, wantAction: authz.ActionDeny, wantWarn: "no intentions:read"},
		{name: "L7 JWT permission", ixn: base(l7(
			&api.IntentionPermission{Action: "allow", HTTP: get, JWT: &api.IntentionJWTRequirement{Providers: []*api.IntentionJWTProvider{{Name: "okta"}}}},
			&api.IntentionPermission{Action: "allow", HTTP: &api.IntentionHTTPPermission{PathExact: "/health"}})),
			wantPerms: []authz.Action{authz.ActionDeny, authz.ActionAllow}, wantWarn: "permissions [1] require a JWT"},
		{name: "bad regex", ixn: base(l7(&api.IntentionPermission{Action: "allow", HTTP: &api.IntentionHTTPPermission{PathRegex: "/api/["}})),
			wantAction: authz.ActionDeny, wantWarn: "rejected by ztn"},
		{name: "long reason", ixn: base(l7(&api.IntentionPermission{Action: "allow", HTTP: &api.IntentionHTTPPermission{PathRegex: "/é[" + strings.Repeat("é", 600)}})),
			wantAction: authz.ActionDeny, wantWarn: "rejected by ztn"},
		{name: "null permission", ixn: base(l7(nil)), wantAction: authz.ActionDeny, wantWarn: "permission 1 is null"},
		{name: "no action", ixn: base(func(i *api.Intention) { i.Action = "" }), wantAction: authz.ActionDeny, wantWarn: "rejected by ztn"},
		{name: "bad action", ixn: base(func(i *api.Intention) { i.Action = "maybe" }), wantAction: authz.ActionDeny, wantWarn: "rejected by ztn"},
		{name: "partial wildcard", ixn: base(func(i *api.Intention) { i.SourceName = "we*" }), wantErr: "cannot be represented"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, warn, err := convertIntention(tc.ixn, dst, tc.jwt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if src.Peer != tc.wantPeer || (src.Peer != "" && src.Partition != "") {
				t.Fatalf("peer %q partition %q, want peer %q and no partition", src.Peer, src.Partition, tc.wantPeer)
			}
			if !strings.Contains(warn, tc.wantWarn) || (tc.wantWarn == "") != (warn == "") {
				t.Fatalf("warning %q, want %q", warn, tc.wantWarn)
			}
			if tc.wantWarn != "" && !strings.HasPrefix(src.Description, "ztn: ") {
				t.Fatalf("description %q does not say why", src.Description)
			}
			if src.Action != tc.wantAction || len(src.Permissions) != len(tc.wantPerms) {
				t.Fatalf("converted to %+v", src)
			}
			for i, p := range src.Permissions {
				if p.Action != tc.wantPerms[i] {
					t.Fatalf("permission %d: %s, want %s", i+1, p.Action, tc.wantPerms[i])
				}
			}
			if err := entry("api", src).Validate(); err != nil {
				t.Fatalf("converted source invalid: %v", err)
			}
		})
	}
}

// Before the first sync everything is denied, and the error says why.
func TestIntentionsDeniesBeforeFirstSync(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	c := newIntentions(t, testConfig(consulClient(t, addr, "")), "api", WithDefaultAllow())
	poll.Eventually(t, 5*time.Second, func() error {
		if c.Err() == nil {
			return errors.New("no error yet")
		}
		return nil
	})
	if d := c.Authorize(l4req("web", "api")); d.Allowed || d.Kind() != authz.KindNotSynced {
		t.Fatalf("before sync: %v", d)
	}
	if err := c.Err(); !strings.Contains(err.Error(), "consul: intentions api: Consul unreachable") {
		t.Fatalf("Err() = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.WaitSynced(ctx); err == nil || !strings.Contains(err.Error(), "Consul unreachable") || strings.Count(err.Error(), "consul: ") != 1 {
		t.Fatalf("WaitSynced = %v", err)
	}
	if c.Staleness() != 0 {
		t.Fatalf("Staleness %s", c.Staleness())
	}
	if err := c.Ready(); err == nil || !strings.Contains(err.Error(), "consul: intentions api: not synced yet: denying everything") || !strings.Contains(err.Error(), "Consul unreachable") {
		t.Fatalf("Ready() = %v", err)
	}
	_ = c.Close()
	if err := c.Ready(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Ready() after Close = %v", err)
	}
}

// Intentions follow Consul: decisions, Changed, only the watched
// destination, and a destination with no intentions at all.
func TestIntentionsSync(t *testing.T) {
	srv := testenv.Consul(t)
	client := consulClient(t, srv.Addr, "")
	ctx := poll.Context(t, 20*time.Second)
	writeEntry(t, client, `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"},{"Name":"*","Action":"deny"}]}`)
	c := newIntentions(t, testConfig(client), "api", WithDefaultAllow())
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if d := c.Authorize(l4req("web", "api")); !d.Allowed || d.Kind() != authz.KindIntention {
		t.Fatalf("web: %v", d)
	}
	if d := c.Authorize(l4req("db", "api")); d.Allowed {
		t.Fatalf("db: %v", d)
	}
	// Another destination is not this authorizer's: denied.
	if d := c.Authorize(l4req("web", "db")); d.Allowed {
		t.Fatalf("web → db: %v", d)
	}
	// Explicit default namespace and partition are the same destination.
	if d := c.Authorize(authz.Request{Source: sid(authz.Selector{Name: "web"}), Destination: sid(authz.Selector{Partition: ztn.DefaultPartition, Namespace: ztn.DefaultNamespace, Name: "api"})}); !d.Allowed {
		t.Fatalf("explicit defaults: %v", d)
	}

	ch := c.Changed()
	t0 := time.Now()
	writeEntry(t, client, `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"deny"}]}`)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed after an intention change")
	}
	t.Logf("change seen after %s", time.Since(t0).Round(time.Millisecond))
	if d := c.Authorize(l4req("web", "api")); d.Allowed {
		t.Fatalf("web after the change: %v", d)
	}
	if d := c.Authorize(l4req("db", "api")); !d.Allowed || d.Kind() != authz.KindDefault {
		t.Fatalf("db after the change: %v", d)
	}
	// A wildcard destination's intentions apply too.
	ch = c.Changed()
	writeEntry(t, client, `{"Kind":"service-intentions","Name":"*","Sources":[{"Name":"db","Action":"deny"}]}`)
	<-ch
	if d := c.Authorize(l4req("db", "api")); d.Allowed || d.Kind() != authz.KindIntention {
		t.Fatalf("db after the * entry: %v", d)
	}
	// Deleting everything leaves the default.
	ch = c.Changed()
	for _, n := range []string{"api", "*"} {
		if err := retryWrite(func() error { _, err := client.ConfigEntries().Delete(api.ServiceIntentions, n, nil); return err }); err != nil {
			t.Fatal(err)
		}
	}
	poll.Eventually(t, 5*time.Second, func() error {
		if len(c.Intentions()) != 0 {
			return fmt.Errorf("intentions left: %v", c.Intentions())
		}
		return nil
	})
	<-ch
	if d := c.Authorize(l4req("web", "api")); !d.Allowed || d.Kind() != authz.KindDefault {
		t.Fatalf("web with no intentions: %v", d)
	}

	// An unknown service syncs (nothing applies) and gets the default.
	unknown := newIntentions(t, testConfig(client), "no-such-service")
	if err := unknown.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if d := unknown.Authorize(l4req("web", "no-such-service")); d.Allowed || d.Kind() != authz.KindDefault {
		t.Fatalf("unknown service: %v", d)
	}

	// After Close everything is denied.
	ch = c.Changed()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	<-ch
	if d := c.Authorize(l4req("web", "api")); d.Allowed {
		t.Fatalf("after Close: %v", d)
	}
}

// Consul answering 5xx: the last intentions stay in force, staleness is
// exported (gauge and log), the maximum staleness fails closed (and says
// so on Changed), and recovery restores them.
func TestIntentionsServerErrors(t *testing.T) {
	srv := testenv.Consul(t)
	direct := consulClient(t, srv.Addr, "")
	proxy := testenv.NewFaultProxy(t, srv.Addr)
	writeEntry(t, direct, `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"}]}`)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	logs := &logtest.Buffer{}
	c := newIntentions(t, testConfig(consulClient(t, proxy.Addr, "")), "api",
		WithMeterProvider(mp), WithMaxStaleness(700*time.Millisecond),
		WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	ctx := poll.Context(t, 20*time.Second)
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if d := c.Authorize(l4req("web", "api")); !d.Allowed {
		t.Fatalf("web: %v", d)
	}
	if err := c.Ready(); err != nil {
		t.Fatalf("Ready() after sync = %v", err)
	}

	ch := c.Changed()
	t0 := time.Now()
	proxy.Fail(http.StatusInternalServerError)
	poll.Eventually(t, 5*time.Second, func() error {
		if c.Staleness() < 200*time.Millisecond {
			return fmt.Errorf("staleness %s", c.Staleness())
		}
		return nil
	})
	if d := c.Authorize(l4req("web", "api")); !d.Allowed && time.Since(t0) < 600*time.Millisecond {
		t.Fatalf("web while stale (before the maximum): %v", d)
	}
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), "Consul answered 500") {
		t.Fatalf("Err() = %v", err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if v, ok := gauge(rm, "ztn.authz.staleness"); !ok || v < 0.2 {
		t.Fatalf("ztn.authz.staleness = %v (%v)", v, ok)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed when failing closed")
	}
	if el := time.Since(t0); el < 600*time.Millisecond {
		t.Fatalf("failed closed after %s; the maximum staleness is 700ms", el)
	}
	if d := c.Authorize(l4req("web", "api")); d.Allowed {
		t.Fatalf("web after the maximum staleness: %v", d)
	}
	if err := c.Ready(); err == nil || !strings.Contains(err.Error(), "over the maximum staleness 700ms: denying everything") || !strings.Contains(err.Error(), "Consul answered 500") {
		t.Fatalf("Ready() after the maximum staleness = %v", err)
	}
	for _, want := range []string{"keeping the last known intentions", "Consul answered 500", "older than the maximum staleness"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, logs)
		}
	}

	ch = c.Changed()
	proxy.Heal()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed on recovery")
	}
	poll.Eventually(t, 5*time.Second, func() error {
		if d := c.Authorize(l4req("web", "api")); !d.Allowed {
			return fmt.Errorf("web after recovery: %v", d)
		}
		return nil
	})
	if c.Staleness() != 0 || c.Err() != nil || c.Ready() != nil {
		t.Fatalf("after recovery: staleness %s, err %v, ready %v", c.Staleness(), c.Err(), c.Ready())
	}
}

func gauge(rm metricdata.ResourceMetrics, name string) (float64, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[float64]); ok && m.Name == name && len(g.DataPoints) > 0 {
				return g.DataPoints[0].Value, true
			}
		}
	}
	return 0, false
}

// With ACLs: a token without intentions:read gets an error naming it and
// nothing is allowed; a token with intentions:read on its destination only
// syncs everything that applies to it, wildcard entries included.
func TestIntentionsACL(t *testing.T) {
	srv := testenv.Consul(t, testenv.ConsulACL(""))
	admin := consulClient(t, srv.Addr, srv.Token)
	ctx := poll.Context(t, 20*time.Second)
	writeEntry(t, admin, `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"}]}`)
	writeEntry(t, admin, `{"Kind":"service-intentions","Name":"*","Sources":[{"Name":"ops","Action":"allow"},{"Name":"evil","Action":"deny"}]}`)
	token := func(rules string) string {
		pol, _, err := admin.ACL().PolicyCreate(&api.ACLPolicy{Name: fmt.Sprintf("p%d", time.Now().UnixNano()), Rules: rules}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := admin.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok.SecretID
	}

	none := newIntentions(t, testConfig(consulClient(t, srv.Addr, token(`service "db" { policy = "read" }`))), "api")
	poll.Eventually(t, 5*time.Second, func() error {
		if err := none.Err(); err == nil || !strings.Contains(err.Error(), `lacks intentions:read on "api"`) {
			return fmt.Errorf("Err() = %v", err)
		}
		return nil
	})
	t.Logf("no intentions:read: %v", none.Err())
	if d := none.Authorize(l4req("web", "api")); d.Allowed {
		t.Fatalf("allowed without a sync: %v", d)
	}

	scoped := newIntentions(t, testConfig(consulClient(t, srv.Addr, token(`service "api" { policy = "read" intentions = "read" }`))), "api")
	if err := scoped.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if d := scoped.Authorize(l4req("web", "api")); !d.Allowed {
		t.Fatalf("web: %v", d)
	}
	if d := scoped.Authorize(l4req("evil", "api")); d.Allowed {
		t.Fatalf("evil: %v", d)
	}
	// Consul grants intentions:read on "*" to any token with an
	// intentions:read rule, so the wildcard entry can be checked for JWT
	// requirements and its allow is in force.
	if d := scoped.Authorize(l4req("ops", "api")); !d.Allowed {
		t.Fatalf("ops (allowed by the * entry): %v", d)
	}
}

// Intentions Consul accepts but ztn cannot enforce are denied, never
// allowed: a JWT requirement on the entry (Consul's own connection-level
// check ignores it and allows), one on a permission, and a path regex Go
// cannot compile. Other sources are unaffected.
func TestIntentionsUnenforceableIntentions(t *testing.T) {
	srv := testenv.Consul(t)
	client := consulClient(t, srv.Addr, "")
	ctx := poll.Context(t, 20*time.Second)
	writeEntry(t, client, `{"Kind":"jwt-provider","Name":"okta","JSONWebKeySet":{"Local":{"JWKS":"eyJrZXlzIjpbXX0="}}}`)
	for _, svc := range []string{"api", "db"} {
		writeEntry(t, client, `{"Kind":"service-defaults","Name":"`+svc+`","Protocol":"http"}`)
	}
	writeEntry(t, client, `{"Kind":"service-intentions","Name":"api","JWT":{"Providers":[{"Name":"okta"}]},
		"Sources":[{"Name":"web","Action":"allow"},{"Name":"evil","Action":"deny"}]}`)
	writeEntry(t, client, `{"Kind":"service-intentions","Name":"db","Sources":[
		{"Name":"web","Permissions":[{"Action":"allow","HTTP":{"PathPrefix":"/"},"JWT":{"Providers":[{"Name":"okta"}]}}]},
		{"Name":"cron","Permissions":[{"Action":"allow","HTTP":{"PathRegex":"/jobs/["}}]},
		{"Name":"ops","Permissions":[{"Action":"allow","HTTP":{"PathPrefix":"/admin"}}]},
		{"Name":"batch","Action":"allow"}]}`)

	logs := &logtest.Buffer{}
	apiAuthz := newIntentions(t, testConfig(client), "api", WithDefaultAllow(), WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	dbAuthz := newIntentions(t, testConfig(client), "db", WithDefaultAllow())
	for _, c := range []*Intentions{apiAuthz, dbAuthz} {
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Consul's connection-level check ignores the JWT requirement.
	if ok, _, err := client.Connect().IntentionCheck(&api.IntentionCheck{Source: "web", Destination: "api"}, nil); err != nil || !ok {
		t.Fatalf("consul check web → api: %v, %v", ok, err)
	}
	if d := apiAuthz.Authorize(l4req("web", "api")); d.Allowed {
		t.Fatalf("web → api with an entry JWT requirement: %v", d)
	}
	if d := apiAuthz.Authorize(l4req("evil", "api")); d.Allowed {
		t.Fatalf("evil → api: %v", d)
	}
	if !strings.Contains(logs.String(), "the entry requires a JWT") {
		t.Fatalf("no warning logged:\n%s", logs)
	}

	req := func(src, path string) authz.Request {
		return authz.Request{Source: sid(authz.Selector{Name: src}), Destination: sid(authz.Selector{Name: "db"}), HTTP: &authz.HTTPRequest{Path: path, Method: "GET"}}
	}
	if d := dbAuthz.Authorize(req("web", "/x")); d.Allowed {
		t.Fatalf("web GET /x under a JWT permission: %v", d)
	}
	admit := authz.Request{Source: sid(authz.Selector{Name: "cron"}), Destination: sid(authz.Selector{Name: "db"}), AdmitL7: true}
	if d := dbAuthz.Authorize(admit); d.Allowed {
		t.Fatalf("cron (bad regex) admitted: %v", d)
	}
	if d := dbAuthz.Authorize(req("cron", "/jobs/1")); d.Allowed {
		t.Fatalf("cron GET /jobs/1 (bad regex): %v", d)
	}
	if d := dbAuthz.Authorize(req("ops", "/admin/x")); !d.Allowed {
		t.Fatalf("ops GET /admin/x: %v", d)
	}
	if d := dbAuthz.Authorize(l4req("batch", "db")); !d.Allowed {
		t.Fatalf("batch: %v", d)
	}
}

// Sources of a cluster peer, as a real Consul's /match returns them, match
// only callers of that peer; local names and "*" never match those callers.
func TestIntentionsPeerSources(t *testing.T) {
	srv := testenv.Consul(t)
	client := consulClient(t, srv.Addr, "")
	ctx := poll.Context(t, 20*time.Second)
	// Consul takes intentions for a peer whether or not the peering exists
	// yet (making one needs TLS on gRPC, which the test agent has not).
	writeEntry(t, client, `{"Kind":"service-intentions","Name":"api","Sources":[
		{"Name":"web","Action":"allow"},
		{"Name":"web","Peer":"partner","Action":"deny"},
		{"Name":"*","Peer":"partner","Action":"allow"},
		{"Name":"*","Action":"deny"}]}`)
	c := newIntentions(t, testConfig(client), "api")
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src     authz.Selector
		allowed bool
		reason  string
	}{
		{authz.Selector{Name: "web"}, true, "intention web → api allows (precedence 9)"},
		{authz.Selector{Name: "web", Peer: "partner"}, false, "intention partner:web → api denies (precedence 9)"},
		{authz.Selector{Name: "cron", Peer: "partner"}, true, "intention partner:* → api allows (precedence 8)"},
		{authz.Selector{Name: "cron"}, false, "intention * → api denies (precedence 8)"},
		{authz.Selector{Name: "web", Peer: "other"}, false, `no intention for peer "other" matches (default deny)`},
	} {
		d := c.Authorize(authz.Request{Source: sid(tc.src), SourcePeer: tc.src.Peer, Destination: sid(authz.Selector{Name: "api"})})
		if d.Allowed != tc.allowed || d.Reason() != tc.reason {
			t.Errorf("%s → api: %v; want allowed=%v %q", tc.src, d, tc.allowed, tc.reason)
		}
	}
}
