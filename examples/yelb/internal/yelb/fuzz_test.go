package yelb_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ztnlabs/ztn/examples/internal/localdb"
	"github.com/ztnlabs/ztn/examples/yelb/internal/yelb"
	"github.com/ztnlabs/ztn/examples/yelb/internal/yelbtest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// The fuzz targets send raw HTTP requests, on real sockets, to the app
// server (FuzzAppServer) or to the UI forwarding /api/... to it through its
// proxy (FuzzUIProxy), on real Postgres and Redis when they are installed
// (the in-memory store otherwise), and check each answer against the spec's
// table, read independently of the code under test:
//
//   - no panic, no 5xx: bad input is 400 (net/http's parser), 404 or 405;
//   - GET /api/<restaurant> (any number of leading slashes, any query) is
//     one vote, its answer the new count; nothing else changes a count or
//     adds a row to the table (checked in the table itself);
//   - only GET pageviews and getstats count a page view (checked in Redis);
//   - an encoded slash is not a path separator: "/api%2Fihop" is no vote;
//   - afterwards getvotes still answers the four rows, in order.
//
// Seeds: every row of the table, and the hostile spellings of paths,
// names, methods and query strings.
func fuzzSeeds(f *testing.F) {
	long := strings.Repeat("a", 8<<10)
	paths := []string{
		"/api/getvotes", "/api/ihop", "/api/chipotle", "/api/outback", "/api/bucadibeppo",
		"/api/pageviews", "/api/hostname", "/api/getstats", "//api/ihop", "///api/getstats", "/",
		"/index.html", "/yelb.js", "/yelb.css",
		// Names that are not restaurants.
		"/api/pizzahut", "/api/IHOP", "/api/ihop ", "/api/ihop%20", "/api/ihop%00", "/api/%69hop", "/api/ih%6Fp",
		"/api/ihop/", "/api/ihop/1", "/api/", "/api", "/apiihop", "/api/ihop;x", "/api/ihop#x",
		"/api/ｉｈｏｐ", "/api/" + long, "/" + long + "/api/ihop",
		// Dot segments and encoded slashes.
		"/api/../api/ihop", "/api/./ihop", "/x/../api/ihop", "/api/%2e%2e/api/ihop", "/api/..%2fapi%2fihop",
		"/api%2Fihop", "/api%2fihop", "/%2Fapi/ihop", "/api/ihop%2F", "/api//ihop", "/api%252Fihop",
		"/api\\ihop", "/api/%5cihop",
		// Other request targets.
		"http://yelb/api/ihop", "http:/api/ihop", "*", "yelb:80", "",
	}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "get", "G ET", ""}
	for _, p := range paths {
		f.Add("GET", p, "")
	}
	for _, m := range methods {
		f.Add(m, "/api/ihop", "")
		f.Add(m, "//api/getstats", "")
	}
	for _, q := range []string{"x=1", "name=ihop&name=chipotle", "a;b", "%zz", "a=%00", "../../admin", strings.Repeat("q", 4<<10)} {
		for _, p := range []string{"/api/ihop", "/api/pizzahut", "/api/getvotes", "/api/hostname", "/"} {
			f.Add("GET", p, q)
		}
	}
}

func FuzzAppServer(f *testing.F) {
	fuzzSeeds(f)
	fz := newFuzzer(f, false)
	f.Fuzz(fz.check)
}

func FuzzUIProxy(f *testing.F) {
	fuzzSeeds(f)
	fz := newFuzzer(f, true)
	f.Fuzz(fz.check)
}

// fuzzHostname is what the fuzzed app server answers /api/hostname with.
const fuzzHostname = "appserver-fuzz"

// fuzzer is the server under fuzz and independent probes of its stores.
type fuzzer struct {
	ui   bool   // requests go to the UI, which forwards /api/... over HTTP
	addr string // where they go
	// rows returns every row of the vote table, read without the store
	// under test.
	rows func(t testing.TB) map[string]int64
	// pageView counts one page view and returns the count.
	pageView func(t testing.TB) int64
}

func newFuzzer(f *testing.F, ui bool) *fuzzer {
	fz := &fuzzer{ui: ui}
	var (
		votes yelb.VoteStore
		views yelb.PageViewCounter
	)
	if m := localdb.Find().Missing(); m != "" {
		f.Logf("not installed: %s; fuzzing on the in-memory store", m)
		mem := yelb.NewMemory()
		votes, views = mem, mem
		fz.rows = func(t testing.TB) map[string]int64 {
			vs, err := mem.Votes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			rows := map[string]int64{}
			for _, v := range vs {
				rows[v.Name] = v.Value
			}
			return rows
		}
	} else {
		b := newBackend(f)
		pg, rd := b.stores(f, b.ca, dbUser)
		if err := pg.Ping(context.Background()); err != nil { // creates the table
			f.Fatal(err)
		}
		votes, views = pg, rd
		fz.rows = b.rowProbe(f)
	}
	fz.pageView = func(t testing.TB) int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		n, err := views.PageView(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	app, err := yelb.NewAppServer(votes, views, fuzzHostname, yelb.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		f.Fatal(err)
	}
	var h http.Handler = app
	if ui {
		appSrv := httptest.NewServer(app)
		f.Cleanup(appSrv.Close)
		target, _ := url.Parse(appSrv.URL)
		proxy, err := yelb.NewAPIProxy(target, nil, yelb.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			f.Fatal(err)
		}
		h = newUI(f, proxy)
	}
	srv := httptest.NewServer(h)
	f.Cleanup(srv.Close)
	fz.addr = srv.Listener.Addr().String()
	return fz
}

// rowProbe reads the table restaurants on a connection of its own.
func (b *backend) rowProbe(t testing.TB) func(testing.TB) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", b.pg.Host, b.pg.Port, dbUser, yelb.Database))
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSConfig = testenv.ClientTLS(t, b.ca, b.ca, dbUser)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return func(t testing.TB) map[string]int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		rows, err := conn.Query(ctx, "SELECT rtrim(name), count FROM restaurants")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		var (
			name  string
			count int64
		)
		if _, err := pgx.ForEachRow(rows, []any{&name, &count}, func() error { got[name] = count; return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
}

// specAnswer is what the spec says a request gets.
type specAnswer struct {
	code     int    // 0: net/http's own answer, any 4xx
	vote     string // the restaurant that gets one vote
	pageView bool   // counts one page view
	endpoint string // the API endpoint answering (getvotes, ihop, ...), "" for none
	cors     bool   // an answer of the API: exactly one Access-Control-Allow-Origin: *
}

var (
	apiPathRE   = regexp.MustCompile(`^/+api/([^/]*)$`)
	endpoints   = []string{"getvotes", "pageviews", "hostname", "getstats"}
	uiPageFiles = []string{"", "index.html", "yelb.js", "yelb.css"}
)

// spec is the answer to req, parsed as net/http parses it (nil: refused
// by the parser), according to the spec and the README.
func (fz *fuzzer) spec(req *http.Request) specAnswer {
	if req == nil || req.RequestURI == "*" {
		return specAnswer{}
	}
	// One segment "api%2Fihop" is not two segments.
	encodedSlash := strings.Contains(strings.ToLower(req.URL.RawPath), "%2f")
	path := req.URL.Path
	if fz.ui {
		p := strings.TrimLeft(path, "/")
		if p != "api" && !strings.HasPrefix(p, "api/") {
			// The page's files, served by the UI itself.
			switch {
			case encodedSlash || !slices.Contains(uiPageFiles, p):
				return specAnswer{code: 404}
			case req.Method == http.MethodGet || req.Method == http.MethodHead:
				return specAnswer{code: 200}
			default:
				return specAnswer{code: 405}
			}
		}
	}
	m := apiPathRE.FindStringSubmatch(path)
	if m == nil || encodedSlash || !(yelb.IsRestaurant(m[1]) || slices.Contains(endpoints, m[1])) {
		return specAnswer{code: 404, cors: true}
	}
	switch req.Method {
	case http.MethodGet:
	case http.MethodOptions:
		return specAnswer{code: 200, cors: true}
	default:
		return specAnswer{code: 405, cors: true}
	}
	a := specAnswer{code: 200, cors: true, endpoint: m[1]}
	switch {
	case yelb.IsRestaurant(m[1]):
		a.vote = m[1]
	case m[1] == "pageviews" || m[1] == "getstats":
		a.pageView = true
	}
	return a
}

// check sends method target?query and checks the answer and the stores
// against the spec.
func (fz *fuzzer) check(t *testing.T, method, target, query string) {
	if strings.ContainsAny(method+target+query, "\r\n") {
		return // another request, or headers, of the test's choosing: not one request
	}
	if query != "" {
		target += "?" + query
	}
	raw := yelbtest.RawRequest(method, target)
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		req = nil
	}
	want := fz.spec(req)

	before, views := fz.rows(t), fz.pageView(t)
	a := yelbtest.Raw(t, fz.addr, method, raw)
	code, body, hdr := a.Code, a.Body, a.Header
	after, viewsAfter := fz.rows(t), fz.pageView(t)

	what := fmt.Sprintf("%.200q", method+" "+target)
	if code >= 500 {
		t.Fatalf("%s = %d %q: a server error for a client's request", what, code, body)
	}
	switch {
	case want.code == 0 && (code < 400 || code > 499) && req == nil:
		t.Fatalf("%s = %d %q; net/http's parser refuses it: want 4xx", what, code, body)
	case want.code != 0 && code != want.code:
		t.Fatalf("%s = %d %q; want %d", what, code, body, want.code)
	}
	if want.cors {
		if got := hdr.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "*" {
			t.Fatalf("%s: Access-Control-Allow-Origin %q; want exactly one *", what, got)
		}
	}

	// The table: the one vote, if any, and nothing else; never a new row.
	wantRows := maps.Clone(before)
	if want.vote != "" {
		wantRows[want.vote]++
	}
	if !maps.Equal(after, wantRows) {
		t.Fatalf("%s changed the table from %v to %v; want %v", what, before, after, wantRows)
	}
	wantViews := views + 1
	if want.pageView {
		wantViews++
	}
	if viewsAfter != wantViews {
		t.Fatalf("%s: the page views went from %d to %d (the probe counts one); want %d", what, views, viewsAfter, wantViews)
	}
	switch want.endpoint {
	case "":
	case "getvotes":
		want.checkBody(t, what, body, votesOf(after))
	case "pageviews":
		want.checkBody(t, what, body, strconv.FormatInt(views+1, 10))
	case "getstats":
		want.checkBody(t, what, body, fmt.Sprintf(`{"hostname":%q,"pageviews":%d}`, fuzzHostname, views+1))
	case "hostname":
		want.checkBody(t, what, body, fuzzHostname)
	default:
		want.checkBody(t, what, body, strconv.FormatInt(after[want.vote], 10))
	}

	// And the rows still answer as the spec says.
	if a := yelbtest.Raw(t, fz.addr, http.MethodGet, yelbtest.RawRequest(http.MethodGet, "/api/getvotes")); a.Code != 200 || a.Body != votesOf(after) {
		t.Fatalf("after %s: getvotes = %d %q; want 200 %q", what, a.Code, a.Body, votesOf(after))
	}
}

func (a specAnswer) checkBody(t *testing.T, what, body, want string) {
	t.Helper()
	if body != want {
		t.Fatalf("%s: body %q; want %q", what, body, want)
	}
}

// votesOf is getvotes' answer for rows, which must be the four restaurants.
func votesOf(rows map[string]int64) string {
	vs := make([]yelb.Vote, 0, len(rows))
	for _, r := range yelb.Restaurants() {
		vs = append(vs, yelb.Vote{Name: r, Value: rows[r]})
	}
	return votesJSON(int(vs[0].Value), int(vs[1].Value), int(vs[2].Value), int(vs[3].Value))
}
