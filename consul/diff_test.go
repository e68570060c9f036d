package consul

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// Differential test with Consul as the oracle: for random intention sets
// (wildcard sources and destinations, every precedence, allow and deny, L7
// intentions) written to a real Consul, ztn's connection-level decision,
// through Intentions' sync and conversion, equals Consul's
// /v1/connect/intentions/check for every source/destination pair, under
// Consul's default allow (ACLs off) and default deny (ACLs on,
// default_policy deny).
func TestIntentionsDifferential(t *testing.T) {
	t.Run("default-allow", func(t *testing.T) {
		t.Parallel()
		srv := testenv.Consul(t)
		runDifferential(t, consulClient(t, srv.Addr, ""), true, 1)
	})
	t.Run("default-deny", func(t *testing.T) {
		t.Parallel()
		srv := testenv.Consul(t, testenv.ConsulACL(""))
		runDifferential(t, consulClient(t, srv.Addr, srv.Token), false, 2)
	})
}

var (
	diffDestinations = []string{"api", "db", "cache", "web"}      // may have L7 intentions (http)
	diffSources      = []string{"web", "api", "db", "admin", "*"} // written as sources
	diffCallers      = []string{"web", "api", "db", "cache", "admin", "other"}
	diffTargets      = []string{"api", "db", "cache", "web", "other"}
)

func runDifferential(t *testing.T, client *api.Client, defaultAllow bool, seed uint64) {
	const sets = 50
	ctx := poll.Context(t, 120*time.Second)
	for _, d := range diffDestinations {
		writeEntry(t, client, `{"Kind":"service-defaults","Name":"`+d+`","Protocol":"http"}`)
	}
	var opts []IntentionsOption
	if defaultAllow {
		opts = append(opts, WithDefaultAllow())
	}
	authorizers := map[string]*Intentions{}
	for _, d := range diffTargets {
		authorizers[d] = newIntentions(t, testConfig(client), d, opts...)
	}
	for _, a := range authorizers {
		if err := a.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}

	rng := rand.New(rand.NewPCG(seed, seed*7919))
	kinds := map[string]int{}
	compared := 0
	var written []string
	for set := range sets {
		entries := randomEntries(rng)
		var names []string
		for _, e := range entries {
			if err := retryWrite(func() error { _, _, err := client.ConfigEntries().Set(e, nil); return err }); err != nil {
				t.Fatalf("set %d: write %s: %v", set, e.Name, err)
			}
			names = append(names, e.Name)
		}
		for _, n := range written {
			if !slices.Contains(names, n) {
				if err := retryWrite(func() error { _, err := client.ConfigEntries().Delete(api.ServiceIntentions, n, nil); return err }); err != nil {
					t.Fatal(err)
				}
			}
		}
		written = names
		for d, a := range authorizers {
			waitInSync(t, ctx, client, a, d)
		}
		for _, dst := range diffTargets {
			for _, src := range diffCallers {
				want, _, err := client.Connect().IntentionCheck(&api.IntentionCheck{Source: src, Destination: dst}, nil)
				if err != nil {
					t.Fatal(err)
				}
				d := authorizers[dst].Authorize(l4req(src, dst))
				compared++
				kinds[d.Kind()+"/"+noun(d.Allowed)]++
				if d.Allowed != want {
					t.Errorf("set %d: %s → %s: Consul allowed=%v, ztn %v\nentries:\n%s", set, src, dst, want, d, describeEntries(entries))
				}
			}
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("%d sets, %d pairs compared; ztn decisions by kind: %v", sets, compared, kinds)
	// The sets must exercise every way of deciding.
	for _, k := range []string{"intention/allow", "intention/deny", "default/" + noun(defaultAllow), "l7_at_l4/deny"} {
		if kinds[k] < 10 {
			t.Errorf("only %d decisions of kind %s", kinds[k], k)
		}
	}
}

// randomEntries makes one intention set: 1 to 4 destinations (the
// wildcard among them), each with 1 to 4 distinct sources, some L7.
func randomEntries(rng *rand.Rand) []*api.ServiceIntentionsConfigEntry {
	dests := append(slices.Clone(diffDestinations), "*")
	rng.Shuffle(len(dests), func(i, j int) { dests[i], dests[j] = dests[j], dests[i] })
	var out []*api.ServiceIntentionsConfigEntry
	for _, d := range dests[:1+rng.IntN(4)] {
		e := &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: d}
		srcs := slices.Clone(diffSources)
		rng.Shuffle(len(srcs), func(i, j int) { srcs[i], srcs[j] = srcs[j], srcs[i] })
		for _, s := range srcs[:1+rng.IntN(4)] {
			si := &api.SourceIntention{Name: s, Action: api.IntentionActionAllow}
			switch {
			case d != "*" && rng.IntN(5) == 0:
				si.Action = ""
				si.Permissions = randomPermissions(rng)
			case rng.IntN(2) == 0:
				si.Action = api.IntentionActionDeny
			}
			e.Sources = append(e.Sources, si)
		}
		out = append(out, e)
	}
	return out
}

func randomPermissions(rng *rand.Rand) []*api.IntentionPermission {
	var ps []*api.IntentionPermission
	for range 1 + rng.IntN(2) {
		p := &api.IntentionPermission{Action: api.IntentionActionAllow, HTTP: &api.IntentionHTTPPermission{}}
		if rng.IntN(2) == 0 {
			p.Action = api.IntentionActionDeny
		}
		switch rng.IntN(3) {
		case 0:
			p.HTTP.PathPrefix = "/v1/"
		case 1:
			p.HTTP.PathExact = "/health"
		default:
			p.HTTP.PathRegex = "/items/[0-9]+"
		}
		if rng.IntN(2) == 0 {
			p.HTTP.Methods = []string{"GET", "HEAD"}
		}
		if rng.IntN(3) == 0 {
			p.HTTP.Header = []api.IntentionHTTPHeaderPermission{{Name: "x-team", Exact: "blue", Invert: rng.IntN(2) == 0}}
		}
		ps = append(ps, p)
	}
	return ps
}

func describeEntries(entries []*api.ServiceIntentionsConfigEntry) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "  %s:", e.Name)
		for _, s := range e.Sources {
			if len(s.Permissions) > 0 {
				fmt.Fprintf(&b, " %s(L7)", s.Name)
			} else {
				fmt.Fprintf(&b, " %s(%s)", s.Name, s.Action)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// waitInSync waits until a's intentions are those Consul's /match returns
// for dest now (Consul does not wake a blocking query whose answer is
// unchanged, so the index alone cannot tell).
func waitInSync(t *testing.T, ctx context.Context, client *api.Client, a *Intentions, dest string) {
	t.Helper()
	res, _, err := client.Connect().IntentionMatch(&api.IntentionMatch{By: api.IntentionMatchDestination, Names: []string{dest}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	entries, _, err := a.convert(ctx, res[dest])
	if err != nil {
		t.Fatal(err)
	}
	want := authz.NewPolicy()
	if err := want.Set(entries...); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, 5*time.Second, func() error {
		if got := a.Intentions(); !reflect.DeepEqual(got, want.Intentions()) {
			return fmt.Errorf("%s: authorizer has %d intentions, Consul %d", dest, len(got), len(want.Intentions()))
		}
		return nil
	})
}
