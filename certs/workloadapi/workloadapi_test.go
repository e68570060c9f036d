package workloadapi

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/notify"
	"github.com/ztnlabs/ztn/internal/test/certstest"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// wlTamper is a Workload API in front of a real SPIRE agent's: it passes
// the agent's X.509 stream through and rewrites it on demand, to inject the
// malformed and forged updates a real agent cannot be made to send. Like
// faultyIssuer, it is a fault injector, not a stand-in.
type wlTamper struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	addr     string
	upstream workload.SpiffeWorkloadAPIClient

	kick notify.Broadcast
	mu   sync.Mutex
	edit func(*workload.X509SVIDResponse) // nil: pass through
}

func newWLTamper(t *testing.T, agentAddr string) *wlTamper {
	t.Helper()
	conn, err := grpc.NewClient(agentAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "tamper.sock")
	if len(sock) > 100 {
		t.Fatalf("socket path too long: %s", sock)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	p := &wlTamper{addr: "unix://" + sock, upstream: workload.NewSpiffeWorkloadAPIClient(conn)}
	srv := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(srv, p)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(l) })
	t.Cleanup(func() {
		srv.Stop()
		wg.Wait()
		_ = conn.Close()
	})
	return p
}

// set changes the rewriting and re-sends the agent's last update through it.
func (p *wlTamper) set(edit func(*workload.X509SVIDResponse)) {
	p.mu.Lock()
	p.edit = edit
	p.mu.Unlock()
	p.kick.Notify()
}

func (p *wlTamper) FetchX509SVID(req *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	ctx := metadata.AppendToOutgoingContext(stream.Context(), "workload.spiffe.io", "true")
	up, err := p.upstream.FetchX509SVID(ctx, req)
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		last *workload.X509SVIDResponse
		errc = make(chan error, 1)
	)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() {
		for {
			resp, err := up.Recv()
			if err != nil {
				errc <- err
				return
			}
			mu.Lock()
			last = resp
			mu.Unlock()
			p.kick.Notify()
		}
	})
	for {
		kicked := p.kick.Changed()
		mu.Lock()
		resp := last
		mu.Unlock()
		if resp != nil {
			out := proto.Clone(resp).(*workload.X509SVIDResponse)
			p.mu.Lock()
			edit := p.edit
			p.mu.Unlock()
			if edit != nil {
				edit(out)
			}
			if err := stream.Send(out); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return err
		case <-kicked:
		}
	}
}

func newTestWorkloadAPI(t testing.TB, cfg Config, opts ...certs.Option) *Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := New(ctx, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func TestWorkloadAPIConfigErrors(t *testing.T) {
	t.Setenv("SPIFFE_ENDPOINT_SOCKET", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no Address in Config and SPIFFE_ENDPOINT_SOCKET is not set"},
		{Config{Address: "http://127.0.0.1:1"}, `address "http://127.0.0.1:1"`},
		{Config{Address: "tcp://localhost:1"}, "must be an IP:port"},
		{Config{Address: "unix:///nonexistent/agent.sock", Service: "a b"}, `service "a b"`},
		// Nothing listens there: the deadline ends the wait.
		{Config{Address: "unix://" + filepath.Join(t.TempDir(), "none.sock")}, "no X.509-SVID: context deadline exceeded"},
	} {
		w, err := New(ctx, tc.cfg, certs.WithLogger(testLogger(t)))
		if err == nil {
			_ = w.Close()
			t.Fatalf("%+v: accepted", tc.cfg)
		}
		if !strings.HasPrefix(err.Error(), "workloadapi: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %q, want %q", tc.cfg, err, tc.want)
		}
		t.Logf("error: %v", err)
	}
}

// TestWorkloadAPI runs a real SPIRE server and agent, with two entries
// matching this process (web by uid, api by gid), and checks in order:
// picking an SVID by service, SVIDs for unknown services, forged and
// malformed updates (through wlTamper), the agent's SVID rotations, and
// failing closed once the agent is gone and the SVID expires.
func TestWorkloadAPI(t *testing.T) {
	spire := testenv.SPIRE(t)
	webID := "spiffe://ztn.test/ns/default/dc/dc1/svc/web"
	apiID := "spiffe://ztn.test/ns/default/dc/dc1/svc/api"
	spire.CreateEntry(apiID, 0, testenv.GIDSelector())
	spire.WaitForSVID(apiID)

	t.Run("pick by service", func(t *testing.T) {
		for _, svc := range []string{"web", "api"} {
			w := newTestWorkloadAPI(t, Config{Address: spire.WorkloadAPIAddr, Service: svc}, certs.WithLogger(testLogger(t)))
			svid, err := w.GetX509SVID()
			if err != nil {
				t.Fatal(err)
			}
			if want := "spiffe://ztn.test/ns/default/dc/dc1/svc/" + svc; svid.ID.String() != want {
				t.Fatalf("SVID %s, want %s", svid.ID, want)
			}
			b, err := w.GetX509BundleForTrustDomain(svid.ID.TrustDomain())
			if err != nil || len(b.X509Authorities()) == 0 {
				t.Fatalf("bundle: %v", err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := New(ctx, Config{Address: spire.WorkloadAPIAddr, Service: "db"}, certs.WithLogger(testLogger(t)))
		if err == nil || !strings.Contains(err.Error(), `no SVID for service "db" (offered: [`) {
			t.Fatalf("unknown service: %v", err)
		}
		t.Logf("error: %v", err)
	})

	t.Run("forged and malformed updates", func(t *testing.T) {
		tamper := newWLTamper(t, spire.WorkloadAPIAddr)
		logger, logs := logtest.Capture(t)
		reader := sdkmetric.NewManualReader()
		w := newTestWorkloadAPI(t, Config{Address: tamper.addr, Service: "web"},
			certs.WithLogger(logger), certs.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
		good, _ := w.GetX509SVID()
		td := good.ID.TrustDomain()
		goodBundle, _ := w.GetX509BundleForTrustDomain(td)

		foreign := newTestCA(t)
		forged, forgedKey := certstest.SignLeaf(t, foreign, certstest.LeafSpec{URIs: []string{webID}})
		expired, expiredKey := certstest.SignLeaf(t, foreign, certstest.LeafSpec{URIs: []string{webID},
			NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
		pkcs8 := func(k any) []byte {
			der, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			return der
		}
		foreignRoot := foreign.Bundle().X509Authorities()[0].Raw
		onWeb := func(f func(s *workload.X509SVID)) func(*workload.X509SVIDResponse) {
			return func(r *workload.X509SVIDResponse) {
				for _, s := range r.Svids {
					if s.SpiffeId == webID {
						f(s)
					}
				}
			}
		}
		for _, tc := range []struct {
			name string
			edit func(*workload.X509SVIDResponse)
			want string
		}{
			{"garbage SVID", onWeb(func(s *workload.X509SVID) { s.X509Svid = []byte("garbage") }), "Failed to parse X509-SVID response"},
			{"garbage bundle", onWeb(func(s *workload.X509SVID) { s.Bundle = []byte("garbage") }), "Failed to parse X509-SVID response"},
			{"key of another SVID", func(r *workload.X509SVIDResponse) {
				r.Svids[0].X509SvidKey, r.Svids[1].X509SvidKey = r.Svids[1].X509SvidKey, r.Svids[0].X509SvidKey
			}, "does not match private key"},
			{"no SVIDs", func(r *workload.X509SVIDResponse) { r.Svids = nil }, "no SVIDs in response"},
			{"only another identity", func(r *workload.X509SVIDResponse) {
				r.Svids = []*workload.X509SVID{r.Svids[0], r.Svids[1]}
				if r.Svids[0].SpiffeId == webID {
					r.Svids = r.Svids[1:]
				} else {
					r.Svids = r.Svids[:1]
				}
			}, "no SVID for " + webID + " any more"},
			{"SVID of another CA", onWeb(func(s *workload.X509SVID) {
				s.X509Svid, s.X509SvidKey = forged.Raw, pkcs8(forgedKey)
			}), "does not verify against its trust domain's bundle"},
			// Every SVID carries the bundle of its trust domain: replace all.
			{"bundle of another CA", func(r *workload.X509SVIDResponse) {
				for _, s := range r.Svids {
					s.Bundle = foreignRoot
				}
			}, "does not verify against its trust domain's bundle"},
			{"expired SVID and its CA", onWeb(func(s *workload.X509SVID) {
				s.X509Svid, s.X509SvidKey, s.Bundle = expired.Raw, pkcs8(expiredKey), foreignRoot
			}), "expired at"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, _ := certstest.Metrics(t, reader)
				n := logtest.Count(logs(), "WARN", tc.want)
				tamper.set(tc.edit)
				poll.WaitFor(t, 10*time.Second, func() bool { return logtest.Count(logs(), "WARN", tc.want) > n })
				after, _ := certstest.Metrics(t, reader)
				if after["failure"] <= before["failure"] {
					t.Error("no failure counted")
				}
				svid, err := w.GetX509SVID()
				if err != nil || !svid.Certificates[0].Equal(good.Certificates[0]) {
					t.Fatalf("the SVID changed: %v", err)
				}
				b, err := w.GetX509BundleForTrustDomain(td)
				if err != nil || !b.Equal(goodBundle) {
					t.Fatalf("the bundle changed: %v", err)
				}
				// Healed, the agent's own update is taken again.
				changed := w.Changed()
				tamper.set(nil)
				certstest.WaitChanged(t, changed, 10*time.Second, "the agent's update")
				if svid, err := w.GetX509SVID(); err != nil || !svid.Certificates[0].Equal(good.Certificates[0]) {
					t.Fatalf("after healing: %v", err)
				}
			})
		}
	})

	t.Run("rotation and fail closed", func(t *testing.T) {
		// A short-lived SVID: the agent rotates it at about half its life.
		const rotID = "spiffe://ztn.test/ns/default/dc/dc1/svc/rot"
		spire.CreateEntry(rotID, 10*time.Second, testenv.UIDSelector())
		spire.WaitForSVID(rotID)
		logger, logs := logtest.Capture(t)
		w := newTestWorkloadAPI(t, Config{Address: spire.WorkloadAPIAddr, Service: "rot"}, certs.WithLogger(logger))
		first, _ := w.GetX509SVID()
		var second *x509.Certificate
		poll.WaitFor(t, 20*time.Second, func() bool {
			svid, err := w.GetX509SVID()
			if err == nil && !svid.Certificates[0].Equal(first.Certificates[0]) {
				second = svid.Certificates[0]
				return true
			}
			return false
		})
		if logtest.Count(logs(), "SVID rotated", rotID) == 0 {
			t.Error("no log of the rotation")
		}
		if second.NotAfter.Before(first.Certificates[0].NotAfter) {
			t.Error("the new SVID expires before the old one")
		}

		spire.StopAgent()
		poll.WaitFor(t, 20*time.Second, func() bool {
			_, err := w.GetX509SVID()
			return err != nil
		})
		_, err := w.GetX509SVID()
		if !strings.Contains(err.Error(), "expired at") || errors.Is(err, certs.ErrClosed) {
			t.Fatalf("error %v", err)
		}
		t.Logf("error: %v", err)
		poll.WaitFor(t, 5*time.Second, func() bool { return logtest.Count(logs(), "ERROR", "has expired") > 0 })
		if logtest.Count(logs(), "WARN", "Failed to watch the Workload API") == 0 {
			t.Error("the lost agent is not logged")
		}
	})
}
