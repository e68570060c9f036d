package grpcztn_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/grpcztn"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

const allowWebToAPI = `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"}]}]`

func TestHealthCheckAndPeer(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	ids := make(chan ztn.ServiceID, 1)
	healthServer(t, api, grpc.ChainUnaryInterceptor(peerRecorder(ids)))

	resp, err := client(t, web, "api").Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health status %v", resp.Status)
	}
	if got := <-ids; got != web.ID() {
		t.Fatalf("server saw Peer %s, want %s", got, web.ID())
	}
}

// The intentions of the L7 tests: web has ordered permissions; batch has an
// L4 deny; and *→api deny sits below them.
const l7Intentions = `[{"Kind":"service-intentions","Name":"api","Sources":[
  {"Name":"web","Permissions":[
     {"Action":"deny","HTTP":{"PathExact":"/grpc.health.v1.Health/Watch"}},
     {"Action":"allow","HTTP":{"PathPrefix":"/grpc.health.v1.Health/","Methods":["POST"],
        "Header":[{"Name":"x-tenant","Exact":"blue"}]}}]},
  {"Name":"*","Action":"deny"}]}]`

func TestL7PerRPC(t *testing.T) {
	for _, defaultAllow := range []bool{false, true} {
		name := "default-deny"
		var opts []ztnet.DevOption
		if defaultAllow {
			name = "default-allow"
			opts = append(opts, ztnet.WithDevPolicyOptions(authz.WithDefaultAllow()))
		}
		t.Run(name, func(t *testing.T) {
			m := meshtest.Dev(t, opts...)
			meshtest.Intentions(t, m, l7Intentions)
			api, web, batch := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web"), meshtest.Service(t, m, "batch")
			healthServer(t, api)
			hc := client(t, web, "api")
			blue := func() context.Context {
				return metadata.AppendToOutgoingContext(poll.Context(t, 5*time.Second), "x-tenant", "blue")
			}

			// Permission 2 allows (header and method match).
			if _, err := hc.Check(blue(), &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatalf("Check with x-tenant=blue: %v", err)
			}
			// Permission 1 denies Watch, before permission 2 could allow it.
			ws, err := hc.Watch(blue(), &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err = ws.Recv()
			}
			wantStatus(t, err, codes.PermissionDenied, "L7 intention web → api: permission 1 (")
			wantStatus(t, err, codes.PermissionDenied, ") denies")
			// No permission matches: the default decides, and the lower
			// precedence *→api deny is not consulted.
			_, err = hc.Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
			if defaultAllow {
				if err != nil {
					t.Fatalf("no permission matched under default allow: %v", err)
				}
			} else {
				wantStatus(t, err, codes.PermissionDenied, "grpcztn: spiffe://ztn.test/ns/default/dc/dc1/svc/web denied: L7 intention web → api: no permission matched (default deny)")
			}
			// batch matches *→api deny: refused at connection level.
			_, err = client(t, batch, "api").Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
			wantStatus(t, err, codes.PermissionDenied, "denied: intention * → api denies")
		})
	}
}

func wantStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("err = %v, want %v containing %q", err, code, msg)
	}
}

// An L7-only intention admits the connection on a grpcztn listener, and a
// plain ztnet listener of the same service denies it.
func TestL7OnlyIntentionAdmittedOnlyByGRPCListener(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[
	  {"Name":"web","Permissions":[{"Action":"allow","HTTP":{"PathPrefix":"/grpc.health.v1.Health/"}}]}]}]`)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	healthServer(t, api)
	if _, err := client(t, web, "api").Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("grpcztn listener: %v", err)
	}
	plain, err := api.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		if c, err := plain.Accept(); err == nil {
			c.Close()
		}
	}()
	_, err = ztnhook.Of(web).DialAddress(poll.Context(t, 5*time.Second), "api", plain.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "has L7 permissions only, connection-level check denies") {
		t.Fatalf("plain ztnet listener: err = %v, want an L7-only denial", err)
	}
}

func TestRoundRobinAndInstanceChanges(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	var n1, n2, n3 atomic.Int64
	healthServer(t, api, grpc.ChainUnaryInterceptor(counter(&n1)))
	healthServer(t, api, grpc.ChainUnaryInterceptor(counter(&n2)))
	hc := client(t, web, "api")
	check := func() {
		t.Helper()
		if _, err := hc.Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	// Round robin spreads RPCs over the connections that are ready: until
	// the second handshake is done, the first instance gets them all.
	deadline := time.Now().Add(10 * time.Second)
	for n1.Load() == 0 || n2.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("round robin: instances served %d and %d, one never got an RPC", n1.Load(), n2.Load())
		}
		check()
	}
	s1, s2 := n1.Load(), n2.Load()
	for range 20 {
		check()
	}
	if d1, d2 := n1.Load()-s1, n2.Load()-s2; d1 < 5 || d2 < 5 {
		t.Fatalf("round robin: instances served %d and %d of 20", d1, d2)
	}
	// A new instance is picked up by the resolver within a few seconds.
	healthServer(t, api, grpc.ChainUnaryInterceptor(counter(&n3)))
	deadline = time.Now().Add(10 * time.Second)
	for n3.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the new instance got no RPC")
		}
		check()
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeniedClientGetsReason(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api, intruder := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "intruder")
	healthServer(t, api)
	_, err := client(t, intruder, "api").Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
	wantStatus(t, err, codes.PermissionDenied, "intruder denied: no intention matches (default deny)")
}

// plainTLSClient returns a grpc-go client with its own TLS credentials.
func plainTLSClient(t *testing.T, addr string, cert tls.Certificate, roots *x509.CertPool) healthpb.HealthClient {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true, // SPIFFE: verify the chain, not a DNS name
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: roots})
			return err
		},
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return healthpb.NewHealthClient(cc)
}

func TestPlainGRPCClientInterop(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api := meshtest.Service(t, m, "api")
	addr := healthServer(t, api)
	roots := x509.NewCertPool()
	for _, r := range m.CA().Bundle().X509Authorities() {
		roots.AddCert(r)
	}

	// grpc-go with its own TLS and a mesh certificate for web: served
	// (ALPN "h2", authorized in the handshake).
	hc := plainTLSClient(t, addr, svidCert(t, m.CA(), "web"), roots)
	if _, err := hc.Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("plain grpc-go client with a mesh cert: %v", err)
	}

	// The same name from another CA: refused.
	td, _ := spiffeid.TrustDomainFromString("ztn.test")
	other, err := certs.NewDevCA(td)
	if err != nil {
		t.Fatal(err)
	}
	hc = plainTLSClient(t, addr, svidCert(t, other, "web"), roots)
	_, err = hc.Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("plain grpc-go client with a foreign cert: err = %v, want Unavailable", err)
	}
}

// A grpc.Server with grpcztn credentials on a plain TCP listener serves
// nobody.
func TestCredentialsRefuseNonZTNConn(t *testing.T) {
	_, _, err := grpcztn.Credentials().ServerHandshake(nil)
	if err == nil || !strings.HasPrefix(err.Error(), "grpcztn: ") {
		t.Fatalf("ServerHandshake(nil) err = %v", err)
	}
}
