package grpcztn_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ztnlabs/ztn/grpcztn"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
)

// Header conditions on Host and on :authority both read the RPC's
// authority (gRPC moves a Host header to :authority), as Envoy does.
func TestHostAndAuthorityHeaderConditions(t *testing.T) {
	for _, tc := range []struct {
		header string
		code   codes.Code
	}{
		{`{"Name":"Host","Exact":"api"}`, codes.PermissionDenied},
		{`{"Name":"host","Prefix":"AP","IgnoreCase":true}`, codes.PermissionDenied},
		{`{"Name":":authority","Exact":"api"}`, codes.PermissionDenied},
		{`{"Name":"Host","Exact":"other"}`, codes.OK},
		{`{"Name":":authority","Exact":"other"}`, codes.OK},
	} {
		m := meshtest.Dev(t)
		meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[
		  {"Action":"deny","HTTP":{"Header":[`+tc.header+`]}},
		  {"Action":"allow","HTTP":{"PathPrefix":"/"}}]}]}]`)
		api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
		healthServer(t, api)
		_, err := client(t, web, "api").Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
		if tc.code == codes.OK {
			if err != nil {
				t.Errorf("deny on %s: %v, want allowed", tc.header, err)
			}
			continue
		}
		wantStatus(t, err, tc.code, "permission 1")
	}
}

// An RPC path that is not in the clean form httppath gives (dot segments,
// repeated slashes, escapes) is refused before any intention is consulted:
// a handler for unknown services (a proxy, say) never sees it.
func TestUncleanRPCPathRefused(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[
	  {"Action":"deny","HTTP":{"PathPrefix":"/grpc.health.v1.Health/"}},
	  {"Action":"allow","HTTP":{"PathPrefix":"/"}}]}]}]`)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	var unknown atomic.Int64
	healthServer(t, api, grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		unknown.Add(1)
		if err := ss.RecvMsg(&healthpb.HealthCheckRequest{}); err != nil {
			return err
		}
		return ss.SendMsg(&healthpb.HealthCheckResponse{})
	}))
	cc, err := grpcztn.NewClient(web, "api")
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for _, method := range []string{
		"/x/../grpc.health.v1.Health/Check", "/x/%2e%2e/grpc.health.v1.Health/Check",
		"/grpc.health.v1.Health//Check", "//grpc.health.v1.Health/Check", "/x/./y",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := cc.Invoke(ctx, method, &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
		cancel()
		wantStatus(t, err, codes.InvalidArgument, "grpcztn: httppath: ")
	}
	if n := unknown.Load(); n != 0 {
		t.Fatalf("the unknown-service handler ran %d times", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cc.Invoke(ctx, "/other.Service/Method", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}); err != nil || unknown.Load() != 1 {
		t.Fatalf("clean unknown path: %v, handler ran %d times", err, unknown.Load())
	}
}
