package httpztn_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/ztnet"
)

// instance is one instance of api served over real TLS on the dev mesh,
// counting the requests that reached its handler.
type instance struct {
	discovery.Instance
	hits atomic.Int64
	stop func() // closes its listener and connections (kill -9 as seen by clients)
}

// startInstance serves h as an instance of svc named id.
func startInstance(t testing.TB, svc *ztnet.Service, id string, h http.Handler) *instance {
	t.Helper()
	l, err := httpztn.Listen(context.Background(), svc, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{Instance: discovery.Instance{ID: id, Address: l.Addr().String()}}
	srv := httpztn.NewServer(svc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	srv.ErrorLog = nil
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	var once sync.Once
	in.stop = func() { once.Do(func() { _ = srv.Close(); <-done }) }
	t.Cleanup(in.stop)
	return in
}

// catalog lists exactly ins as the instances of service, in this order;
// an instance stays listed after it stops, as a crashed one does until its
// health check lapses.
func catalog(m *ztnet.Dev, service string, ins ...*instance) {
	list := make([]discovery.Instance, len(ins))
	for i, in := range ins {
		list[i] = in.Instance
	}
	m.Catalog().Set(service, list...)
}

var (
	answer      = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	unavailable = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	})
	// resetting resets the stream once the request has arrived.
	resetting = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
)

// observedMesh is a dev mesh in which web may call api; web logs at Debug
// into logs, and collect reads its ztn.http.retries by "destination
// reason".
func observedMesh(t testing.TB) (m *ztnet.Dev, api, web *ztnet.Service, logs *logtest.Buffer, collect func() map[string]int64) {
	m = meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	logs = new(logtest.Buffer)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	opts := []ztnet.Option{
		ztnet.WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		ztnet.WithMeterProvider(mp),
	}
	collect = func() map[string]int64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "ztn.http.retries" {
					continue
				}
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					dest, _ := dp.Attributes.Value("destination")
					reason, _ := dp.Attributes.Value("reason")
					svc, _ := dp.Attributes.Value("service")
					if svc.AsString() != "web" {
						t.Errorf("ztn.http.retries with service %q, want web", svc.AsString())
					}
					got[dest.AsString()+" "+reason.AsString()] += dp.Value
				}
			}
		}
		return got
	}
	return m, meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web", opts...), logs, collect
}

// getOK does a request and fails the test unless it gets 200 "ok" (or 200
// and no body for HEAD).
func getOK(t testing.TB, c *http.Client, method, url string) {
	t.Helper()
	code, body := do(t, c, method, url)
	if code != 200 || (method != "HEAD" && body != "ok") {
		t.Fatalf("%s %s: %d %q", method, url, code, body)
	}
}

// With a retry policy, GETs and HEADs keep succeeding while other instances
// answer 503, reset the request's stream, or are gone: each failed attempt
// is retried on another instance (a connection that cannot be made is not
// even a retry), and every retry is counted and logged at Debug.
func TestRetryGetsPastFailingInstances(t *testing.T) {
	for _, http1 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http1=%v", http1), func(t *testing.T) {
			m, api, web, logs, collect := observedMesh(t)
			ok := startInstance(t, api, "api-ok", answer)
			busy := startInstance(t, api, "api-503", unavailable)
			reset := startInstance(t, api, "api-reset", resetting)
			killed := startInstance(t, api, "api-killed", answer)
			killed.stop()
			catalog(m, "api", ok, busy, reset, killed)

			topts := []httpztn.Option{httpztn.WithRetry(httpztn.RetryPolicy{MaxRetries: 2})}
			if http1 {
				topts = append(topts, httpztn.WithHTTP1())
			}
			c := newClient(t, web, topts...)
			const n = 40
			for i := range n {
				method := "GET"
				if i%4 == 3 {
					method = "HEAD"
				}
				getOK(t, c, method, "http://api/x")
			}
			if ok.hits.Load() != n {
				t.Errorf("the healthy instance served %d of %d", ok.hits.Load(), n)
			}
			if busy.hits.Load() == 0 || reset.hits.Load() == 0 {
				t.Fatalf("the failing instances were never tried: 503 %d, reset %d", busy.hits.Load(), reset.hits.Load())
			}
			want := map[string]int64{"api server-error": busy.hits.Load(), "api connection-error": reset.hits.Load()}
			if got := collect(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("ztn.http.retries = %v, want %v", got, want)
			}
			recs := logs.Records(t, "ztn http retry")
			if int64(len(recs)) != busy.hits.Load()+reset.hits.Load() {
				t.Fatalf("%d retry records, want %d:\n%s", len(recs), busy.hits.Load()+reset.hits.Load(), logs.String())
			}
			for _, r := range recs {
				if r["level"] != "DEBUG" || r["destination"] != "api" ||
					!(r["reason"] == "server-error" && r["status"] == 503.0 && r["instance"] == busy.Address ||
						r["reason"] == "connection-error" && r["instance"] == reset.Address && r["error"] != nil) {
					t.Errorf("retry record %v", r)
				}
			}

			// Without a policy the same requests fail (the 503 comes back,
			// the reset is an error): the test can tell.
			plain := newClient(t, web, topts[1:]...)
			var failed int
			for range 8 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://api/x", nil)
				resp, err := plain.Do(req)
				if err != nil || resp.StatusCode != 200 {
					failed++
				}
				if err == nil {
					resp.Body.Close()
				}
				cancel()
			}
			if failed == 0 {
				t.Errorf("without a retry policy no request failed")
			}
		})
	}
}

// Under a steady stream of GETs, killing one of two instances (its
// listener and connections closed at once, its catalog entry left) fails
// no request: those in flight on its connections are retried on the other.
func TestRetryKillUnderLoad(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond) // requests are in flight when it dies
		_, _ = io.WriteString(w, "ok")
	})
	a, b := startInstance(t, api, "api-a", slow), startInstance(t, api, "api-b", slow)
	catalog(m, "api", a, b)
	c := newClient(t, web, httpztn.WithRetry(httpztn.RetryPolicy{MaxRetries: 2, PerTryTimeout: 2 * time.Second}))
	load := meshtest.StartLoad(8, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://api/x", nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && (resp.StatusCode != 200 || string(body) != "ok") {
			err = fmt.Errorf("%d %q", resp.StatusCode, body)
		}
		return err
	})
	poll.WaitFor(t, 5*time.Second, func() bool { return a.hits.Load() > 20 && b.hits.Load() > 20 })
	a.stop()
	before := b.hits.Load()
	poll.WaitFor(t, 5*time.Second, func() bool { return b.hits.Load() > before+100 })
	load.Stop()
	if n := load.Failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed: %v", n, n+load.OK.Load(), load.Errors())
	}
}

// A POST is never retried, nor a request whose body cannot be read again:
// the 503 comes back as it is, a reset is an error, and each request
// reached one instance once. A POST with an Idempotency-Key, whose body
// http.NewRequest can replay, is retried.
func TestRetryOnlyIdempotentRequests(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	var bodies sync.Map
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies.Store(string(b), true)
		_, _ = io.WriteString(w, "ok")
	})
	ok := startInstance(t, api, "api-ok", echo)
	busy := startInstance(t, api, "api-503", unavailable)
	reset := startInstance(t, api, "api-reset", resetting)
	catalog(m, "api", ok, busy, reset)
	c := newClient(t, web, httpztn.WithRetry(httpztn.RetryPolicy{MaxRetries: 2}))

	send := func(method string, body io.Reader, hdr ...string) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, "http://api/x", body)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var got503, gotReset int
	const n = 12
	for i := range n {
		var body io.Reader = strings.NewReader("post")
		method := "POST"
		if i%2 == 1 { // a GET whose body net/http cannot replay (no GetBody)
			method, body = "GET", io.NopCloser(strings.NewReader("get"))
		}
		code, err := send(method, body)
		switch {
		case err != nil:
			gotReset++
		case code == 503:
			got503++
		case code != 200:
			t.Errorf("%s: status %d", method, code)
		}
	}
	if total := ok.hits.Load() + busy.hits.Load() + reset.hits.Load(); total != n {
		t.Errorf("%d requests reached the instances %d times: some were sent twice", n, total)
	}
	if got503 != int(busy.hits.Load()) || gotReset != int(reset.hits.Load()) || got503 == 0 || gotReset == 0 {
		t.Errorf("%d 503s and %d errors came back; the instances answered %d 503s and reset %d",
			got503, gotReset, busy.hits.Load(), reset.hits.Load())
	}

	for i := range 6 {
		key := fmt.Sprintf("key-%d", i)
		if code, err := send("POST", strings.NewReader(key), "Idempotency-Key", key); err != nil || code != 200 {
			t.Fatalf("POST with an Idempotency-Key: %d, %v", code, err)
		}
		if _, found := bodies.Load(key); !found {
			t.Errorf("POST %s: the instance that answered did not get the body", key)
		}
	}
}

// PerTryTimeout bounds each attempt until the response header: a hung
// instance costs a request one PerTryTimeout, then another instance
// answers; once the header has arrived, a slow body is read to its end.
// A POST to the hung instance fails after PerTryTimeout with an error that
// is a timeout and holds context.DeadlineExceeded.
func TestRetryPerTryTimeout(t *testing.T) {
	m, api, web, _, collect := observedMesh(t)
	release := make(chan struct{})
	defer close(release)
	hung := startInstance(t, api, "api-hung", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	const perTry = 300 * time.Millisecond
	slowBody := startInstance(t, api, "api-slow-body", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "o")
		http.NewResponseController(w).Flush()
		time.Sleep(2 * perTry)
		_, _ = io.WriteString(w, "k")
	}))
	catalog(m, "api", hung, slowBody)
	c := newClient(t, web, httpztn.WithRetry(httpztn.RetryPolicy{MaxRetries: 1, PerTryTimeout: perTry}))
	for range 4 {
		start := time.Now()
		getOK(t, c, "GET", "http://api/x")
		if d := time.Since(start); d > 2*perTry+perTry+time.Second {
			t.Errorf("GET took %v", d)
		}
	}
	if hung.hits.Load() == 0 || slowBody.hits.Load() != 4 {
		t.Fatalf("hung instance tried %d times, the other served %d of 4", hung.hits.Load(), slowBody.hits.Load())
	}
	if got := collect()["api per-try-timeout"]; got != hung.hits.Load() {
		t.Errorf("ztn.http.retries{reason=per-try-timeout} = %d, want %d", got, hung.hits.Load())
	}

	catalog(m, "api", hung)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://api/x", nil)
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	var timeout interface{ Timeout() bool }
	if d := time.Since(start); err == nil || d < perTry || d > perTry+time.Second ||
		!errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &timeout) || !timeout.Timeout() ||
		!strings.Contains(err.Error(), "per-try timeout") {
		t.Errorf("POST to a hung instance: %v after %v", err, d)
	}
}

// A gateway route's Retry policy applies to the requests of that route
// only.
func TestGatewayRouteRetry(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"gateway","Action":"allow"}]}]`)
	api, gwSvc := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "gateway")
	ok := startInstance(t, api, "api-ok", answer)
	busy := startInstance(t, api, "api-503", unavailable)
	catalog(m, "api", ok, busy)
	gw, err := httpztn.NewGateway(gwSvc,
		httpztn.Route{Host: "retry.example", Service: "api", Retry: httpztn.RetryPolicy{MaxRetries: 1}},
		httpztn.Route{Host: "once.example", Service: "api"},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	pub := httptest.NewServer(gw)
	defer pub.Close()
	addr := pub.Listener.Addr().String()
	for range 6 {
		if code, body := rawGet(t, addr, "retry.example", "/x"); code != 200 || body != "ok" {
			t.Fatalf("retry.example: %d %q", code, body)
		}
	}
	var got503 int
	for range 6 {
		if code, _ := rawGet(t, addr, "once.example", "/x"); code == 503 {
			got503++
		}
	}
	if got503 != 3 {
		t.Errorf("once.example: %d of 6 answered 503, want 3 (round robin, no retry)", got503)
	}
}

// balanced is the dev catalog with a Balancer: a resolver that is a
// discovery.Picker, as Consul's is.
type balanced struct {
	*discovery.Static
	*discovery.Balancer
}

// When the resolver is a discovery.Picker, the Transport tries instances in
// its order and reports each connection attempt, so an instance that keeps
// failing is ejected and tried last: it stops costing requests a dial.
func TestTransportFollowsPicker(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	b := discovery.NewBalancer(discovery.WithEjection(2, time.Minute, time.Minute))
	api := meshtest.Service(t, m, "api")
	web := meshtest.Service(t, m, "web", ztnet.WithResolver(balanced{m.Catalog(), b}))
	ok := startInstance(t, api, "api-ok", answer)
	broken, err := net.Listen("tcp", "127.0.0.1:0") // accepts, then hangs up: no handshake
	if err != nil {
		t.Fatal(err)
	}
	defer broken.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := broken.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	catalog(m, "api", ok, &instance{Instance: discovery.Instance{ID: "api-broken", Address: broken.Addr().String()}})
	c := newClient(t, web)
	for range 20 {
		getOK(t, c, "GET", "http://api/x")
	}
	if n := accepted.Load(); n != 2 {
		t.Errorf("the broken instance was dialed %d times, want 2 (then ejected)", n)
	}
	if ej := b.Ejected("api"); len(ej) != 1 || ej[0].ID != "api-broken" {
		t.Errorf("ejected: %v", ej)
	}
}

// An instance that sends its response header and then dies (the stream
// reset, the connection closed) before the end of a small body: with
// BufferBody the GET is retried on another instance and the caller reads
// the other's whole body; a body longer than BufferBody, or a stream of
// unknown length, is not held back. Without BufferBody the caller gets the
// header and a body that breaks off.
func TestRetryBodyCutShort(t *testing.T) {
	cut := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "20")
		_, _ = io.WriteString(w, "partial ")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	long := strings.Repeat("x", 4096)
	for _, http1 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http1=%v", http1), func(t *testing.T) {
			m, api, web, logs, collect := observedMesh(t)
			broken := startInstance(t, api, "api-cut", cut)
			ok := startInstance(t, api, "api-ok", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/long":
					_, _ = io.WriteString(w, long)
				case "/stream": // an event, then nothing until the client leaves
					_, _ = io.WriteString(w, "event\n")
					w.(http.Flusher).Flush()
					<-r.Context().Done()
				default:
					_, _ = io.WriteString(w, "ok")
				}
			}))
			catalog(m, "api", broken, ok)
			var proto []httpztn.Option
			if http1 {
				proto = append(proto, httpztn.WithHTTP1())
			}
			policy := httpztn.RetryPolicy{MaxRetries: 1, PerTryTimeout: 2 * time.Second, BufferBody: 1024}
			c := newClient(t, web, append(proto, httpztn.WithRetry(policy))...)
			const n = 10
			for range n {
				getOK(t, c, "GET", "http://api/x")
			}
			if broken.hits.Load() == 0 {
				t.Fatal("the instance that cuts its bodies short was never tried")
			}
			if got, want := collect()["api connection-error"], broken.hits.Load(); got != want {
				t.Errorf("connection-error retries = %d, want %d", got, want)
			}
			for _, r := range logs.Records(t, "ztn http retry") {
				if e, _ := r["error"].(string); !strings.Contains(e, "response body cut short") {
					t.Errorf("retry record %v: want the error to say the body was cut short", r)
				}
			}
			// A body longer than BufferBody streams as it comes.
			for range 4 {
				code, body := do(t, c, "GET", "http://api/long")
				if code != 200 || body != long {
					t.Fatalf("GET /long: %d, %d bytes", code, len(body))
				}
			}

			// A stream's header and first event come at once.
			catalog(m, "api", ok)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://api/stream", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || line != "event\n" {
				t.Fatalf("stream: %q, %v", line, err)
			}
			cancel()
			resp.Body.Close()
			catalog(m, "api", broken, ok)

			// Without BufferBody the header of the broken instance is the
			// answer, and its body breaks off.
			policy.BufferBody = 0
			plain := newClient(t, web, append(proto, httpztn.WithRetry(policy))...)
			var cutShort int
			for range 8 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://api/x", nil)
				resp, err := plain.Do(req)
				if err == nil {
					if _, err := io.ReadAll(resp.Body); err != nil {
						cutShort++
					}
					resp.Body.Close()
				}
				cancel()
			}
			if cutShort == 0 {
				t.Errorf("without BufferBody no body broke off")
			}
		})
	}
}
