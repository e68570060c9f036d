package obs

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	ztnconsul "github.com/ztnlabs/ztn/consul"
	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// dashboardPath is the Grafana dashboard of ztn's metrics.
const dashboardPath = "../../../dashboards/ztn.json"

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promBraces   = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	labelValues  = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
	promKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
		"and", "or", "unless", "offset", "inf", "nan", "e"}
)

// promqlMetricNames returns the metric names a PromQL expression reads:
// the identifiers left once strings, label matchers, ranges and grouping
// clauses are taken out, other than functions and aggregations (followed
// by a parenthesis) and keywords.
func promqlMetricNames(expr string) []string {
	e := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m").Replace(expr)
	e = promString.ReplaceAllString(e, `""`)
	e = promBraces.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		name, rest := e[loc[0]:loc[1]], strings.TrimLeft(e[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || slices.Contains(promKeywords, strings.ToLower(name)) ||
			(loc[0] > 0 && strings.ContainsAny(e[loc[0]-1:loc[0]], "0123456789.$")) {
			continue
		}
		names = append(names, name)
	}
	return names
}

func TestPromqlMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (service_name, result) (rate(ztn_handshakes_total{side="server", result!="ok", service_name=~"$service"}[$__rate_interval]))`: {"ztn_handshakes_total"},
		`histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="rate(b)"}[5m]))) / on (job) group_left (instance) b_total offset 5m`:          {"a_bucket", "b_total"},
		`up == bool 1 and ignoring (x) c unless d or 1e3`: {"up", "c", "d"},
		`max(x) without (y) > 2`:                          {"x"},
	} {
		if got := promqlMetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("promqlMetricNames(%s) = %q, want %q", expr, got, want)
		}
	}
}

// dashboardQueries returns every PromQL expression of the dashboard's
// panels (rows' included) and the metric each label_values() variable
// query reads.
func dashboardQueries(t *testing.T) (exprs, varMetrics []string) {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, raw := range ps {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("%s: panel: %v", dashboardPath, err)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q has a target without an expression", p.Title)
					continue
				}
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &q) != nil {
			_ = json.Unmarshal(v.Query, &q.Query) // the older form: a plain string
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable query %q: want label_values(<metric>, <label>)", q.Query)
			continue
		}
		varMetrics = append(varMetrics, m[1])
	}
	return exprs, varMetrics
}

// exportedNames returns the series names a /metrics page exposes, as
// PromQL sees them: a histogram's _bucket, _sum and _count.
func exportedNames(t *testing.T, addr string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		switch f[3] {
		case "histogram":
			names[f[2]+"_bucket"], names[f[2]+"_sum"], names[f[2]+"_count"] = true, true, true
		case "summary":
			names[f[2]], names[f[2]+"_sum"], names[f[2]+"_count"] = true, true, true
		default:
			names[f[2]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// exercise makes the three-hop mesh produce every kind of metric ztn has:
// requests (HTTP and gRPC), a denied dial, retries (an instance answering
// 503), a connection closed by a policy change, certificates, and the Consul
// backends' staleness gauges (real Consul). It returns the services'
// /metrics addresses.
func exercise(t *testing.T) []string {
	t.Helper()
	consulSrv := testenv.Consul(t)
	m := newThreeHops(t, "")
	ctx := t.Context()

	// retries: "flaky" has two instances, one of which answers 503.
	m.mesh.SetIntentionsJSON(threeHopsIntentions[:len(threeHopsIntentions)-1] +
		`, {"Kind": "service-intentions", "Name": "flaky", "Sources": [{"Name": "user", "Action": "allow"}]}]`)
	flakySvc := m.mesh.Service("flaky")
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusOK} {
		srv := httpztn.NewServer(flakySvc, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }))
		l, err := httpztn.Listen(ctx, flakySvc, "tcp", "127.0.0.1:0")
		serve(t, l, err, srv.Serve, func() { _ = srv.Close() })
	}
	retrying := httpztn.NewClient(m.svc["user"], httpztn.WithRetry(httpztn.RetryPolicy{MaxRetries: 1}))
	t.Cleanup(retrying.CloseIdleConnections)
	for range 4 {
		resp, err := retrying.Get("http://flaky/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	if code := m.get(t); code != http.StatusOK {
		t.Fatalf("user → front → back: %d", code)
	}
	if _, err := m.svc["intruder"].Dial(ctx, "back"); err == nil {
		t.Fatal("intruder's dial to back was admitted")
	}
	// user's connection to front stays open (HTTP keep-alive) until front
	// no longer admits user: the policy change closes it.
	m.mesh.SetIntentionsJSON(`[{"Kind": "service-intentions", "Name": "back", "Sources": [{"Name": "front", "Action": "allow"}]}]`)

	// Consul's intentions and catalog, measured with back's telemetry.
	cfg := ztnconsul.Config{Client: meshtest.ConsulClient(t, consulSrv.Addr)}
	in, err := ztnconsul.NewIntentions(cfg, "back", ztnconsul.WithMeterProvider(m.tel["back"].MeterProvider), ztnconsul.WithLogger(meshtest.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	cat, err := ztnconsul.NewCatalog(cfg, ztnconsul.WithMeterProvider(m.tel["back"].MeterProvider), ztnconsul.WithLogger(meshtest.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cat.Close() })
	if _, err := cat.Resolve(ctx, "front"); err != nil {
		t.Fatal(err)
	}
	return []string{m.metrics["user"], m.metrics["front"], m.metrics["back"], m.metrics["intruder"]}
}

// Every metric the dashboard's queries read is one ztn's services really
// export: the names come from scraping the /metrics of a mesh that
// exercised them all (exercise), not from a list kept by hand. Then a real
// Prometheus scraping that mesh evaluates every query, and each must give
// data.
func TestDashboardQueriesReadExportedMetrics(t *testing.T) {
	exprs, varMetrics := dashboardQueries(t)
	if len(exprs) < 10 {
		t.Fatalf("%s: only %d queries", dashboardPath, len(exprs))
	}
	targets := exercise(t)

	want := map[string][]string{} // metric → the queries reading it
	for _, e := range exprs {
		names := promqlMetricNames(e)
		if len(names) == 0 {
			t.Errorf("query reads no metric: %s", e)
		}
		for _, n := range names {
			want[n] = append(want[n], e)
		}
	}
	for _, n := range varMetrics {
		want[n] = append(want[n], "a variable's label_values()")
	}
	var missing []string
	poll.Eventually(t, 15*time.Second, func() error {
		exported := map[string]bool{}
		for _, a := range targets {
			for n := range exportedNames(t, a) {
				exported[n] = true
			}
		}
		missing = missing[:0]
		for n := range want {
			if !exported[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			return &missingError{missing: missing, want: want, exported: exported}
		}
		return nil
	})

	p := testenv.Prometheus(t, targets)
	for _, e := range exprs {
		q := strings.NewReplacer(`"$service"`, `".*"`, "$__rate_interval", "1m").Replace(e)
		p.WaitQuery(q, func(r []testenv.PromSample) bool { return len(r) > 0 })
	}
}

type missingError struct {
	missing  []string
	want     map[string][]string
	exported map[string]bool
}

func (e *missingError) Error() string {
	var b strings.Builder
	b.WriteString("the dashboard reads metrics no service exports:")
	for _, n := range e.missing {
		b.WriteString("\n  " + n + " (in " + e.want[n][0] + ")")
	}
	names := make([]string, 0, len(e.exported))
	for n := range e.exported {
		names = append(names, n)
	}
	slices.Sort(names)
	b.WriteString("\nexported: " + strings.Join(names, " "))
	return b.String()
}
