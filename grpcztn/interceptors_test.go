package grpcztn_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/ztnlabs/ztn/grpcztn"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/ztnet"
)

// web may call the health service only as tenant blue: other calls are
// admitted at the connection and refused per RPC.
const blueOnly = `[{"Kind":"service-intentions","Name":"api","Sources":[
  {"Name":"web","Permissions":[{"Action":"allow","HTTP":{"PathPrefix":"/grpc.health.v1.Health/",
     "Header":[{"Name":"x-tenant","Exact":"blue"}]}}]}]}]`

// seen records the calls a user's interceptors saw: "kind method peer".
type seen struct {
	mu    sync.Mutex
	calls []string
}

func (s *seen) add(ctx context.Context, kind, method string) {
	id, _ := grpcztn.Peer(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf("%s %s %s", kind, method, id))
}

func (s *seen) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func (s *seen) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	s.add(ctx, "unary", info.FullMethod)
	return h(ctx, req)
}

func (s *seen) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	s.add(ss.Context(), "stream", info.FullMethod)
	return h(srv, ss)
}

// serveWith serves the health service on a grpcztn listener of svc with
// srv, stopped when the test ends.
func serveWith(t *testing.T, svc *ztnet.Service, srv *grpc.Server) {
	t.Helper()
	l, err := grpcztn.Listen(context.Background(), svc, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	healthpb.RegisterHealthServer(srv, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Stop(); <-done })
}

// A user's interceptors run after ztn's authorization, whatever the order
// of the options: a refused RPC never reaches them, an allowed one reaches
// them with the caller's identity in the context.
func TestUserInterceptorsRunAfterAuthorization(t *testing.T) {
	cases := []struct {
		name   string
		server func(svc *ztnet.Service, s *seen) *grpc.Server
	}{
		{"NewServer-chain", func(svc *ztnet.Service, s *seen) *grpc.Server {
			return grpcztn.NewServer(svc, grpc.ChainUnaryInterceptor(s.unary), grpc.ChainStreamInterceptor(s.stream))
		}},
		{"user-chain-before-ServerOptions", func(svc *ztnet.Service, s *seen) *grpc.Server {
			return grpc.NewServer(append([]grpc.ServerOption{grpc.ChainUnaryInterceptor(s.unary), grpc.ChainStreamInterceptor(s.stream)},
				grpcztn.ServerOptions(svc)...)...)
		}},
		{"user-chain-after-ServerOptions", func(svc *ztnet.Service, s *seen) *grpc.Server {
			return grpc.NewServer(append(grpcztn.ServerOptions(svc), grpc.ChainUnaryInterceptor(s.unary), grpc.ChainStreamInterceptor(s.stream))...)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := meshtest.Dev(t)
			meshtest.Intentions(t, m, blueOnly)
			api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
			var s seen
			serveWith(t, api, tc.server(api, &s))
			hc := client(t, web, "api")
			blue := func() context.Context {
				return metadata.AppendToOutgoingContext(poll.Context(t, 5*time.Second), "x-tenant", "blue")
			}
			watch := func(ctx context.Context) error {
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				ws, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
				if err == nil {
					_, err = ws.Recv()
				}
				return err
			}

			// Refused per RPC: the user's interceptors never see them.
			_, err := hc.Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
			wantStatus(t, err, codes.PermissionDenied, "no permission matched")
			wantStatus(t, watch(poll.Context(t, 5*time.Second)), codes.PermissionDenied, "no permission matched")
			if got := s.get(); len(got) != 0 {
				t.Fatalf("refused RPCs reached the user's interceptors: %q", got)
			}

			// Allowed: seen, with the caller's identity.
			if _, err := hc.Check(blue(), &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			if err := watch(blue()); err != nil {
				t.Fatal(err)
			}
			want := []string{
				"unary /grpc.health.v1.Health/Check " + web.ID().String(),
				"stream /grpc.health.v1.Health/Watch " + web.ID().String(),
			}
			if got := s.get(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("the user's interceptors saw\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// grpc.UnaryInterceptor and grpc.StreamInterceptor would run before every
// chained interceptor, so before ztn's authorization: NewServer refuses them
// with a panic that says what to use instead.
func TestSingleInterceptorOptionsRefused(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, blueOnly)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	for _, tc := range []struct {
		name string
		opt  func(*seen) grpc.ServerOption
	}{
		{"UnaryInterceptor", func(s *seen) grpc.ServerOption { return grpc.UnaryInterceptor(s.unary) }},
		{"StreamInterceptor", func(s *seen) grpc.ServerOption { return grpc.StreamInterceptor(s.stream) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s seen
			var srv *grpc.Server
			msg := func() (msg any) {
				defer func() { msg = recover() }()
				srv = grpcztn.NewServer(api, tc.opt(&s))
				return nil
			}()
			if srv != nil {
				// Without the fix: show that a refused RPC reached the
				// user's interceptor.
				serveWith(t, api, srv)
				hc := client(t, web, "api")
				_, _ = hc.Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
				if ws, err := hc.Watch(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{}); err == nil {
					_, _ = ws.Recv()
				}
				t.Fatalf("NewServer accepted grpc.%s; the user's interceptor saw %q", tc.name, s.get())
			}
			str, _ := msg.(string)
			for _, want := range []string{"grpcztn: ", "grpc.Chain" + tc.name} {
				if !strings.Contains(str, want) {
					t.Errorf("panic %v, want it to contain %q", msg, want)
				}
			}
		})
	}
}
