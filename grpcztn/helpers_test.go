package grpcztn_test

import (
	"context"
	"crypto/tls"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/grpcztn"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/ztnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var discard = meshtest.Discard()

// healthServer serves the standard health service of svc on a new grpcztn
// listener, with extra server options; it returns the listener's address.
func healthServer(t testing.TB, svc *ztnet.Service, opts ...grpc.ServerOption) string {
	t.Helper()
	l, err := grpcztn.Listen(context.Background(), svc, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcztn.NewServer(svc, opts...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return l.Addr().String()
}

func client(t testing.TB, from *ztnet.Service, to string, opts ...grpc.DialOption) healthpb.HealthClient {
	t.Helper()
	cc, err := grpcztn.NewClient(from, to, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return healthpb.NewHealthClient(cc)
}

// svidCert returns a tls.Certificate for service name issued by ca.
func svidCert(t testing.TB, ca *certs.DevCA, name string) tls.Certificate {
	t.Helper()
	src, err := ca.Source(context.Background(), "dc1", name, time.Hour, certs.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
	for _, x := range svid.Certificates {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// peerRecorder is a unary interceptor that records grpcztn.Peer.
func peerRecorder(ids chan<- ztn.ServiceID) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if id, ok := grpcztn.Peer(ctx); ok {
			select {
			case ids <- id:
			default:
			}
		}
		return h(ctx, req)
	}
}

// counter is a unary interceptor that counts RPCs served.
func counter(n *atomic.Int64) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		n.Add(1)
		return h(ctx, req)
	}
}
