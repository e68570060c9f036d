package grpcztn_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/grpcztn"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// A client the server's intentions deny gets codes.PermissionDenied with
// the server's reason, not Unavailable (which retry logic takes for a
// passing fault), on unary and streaming RPCs alike; the error holds the
// *ztnet.DeniedError; and the channel backs off instead of redialing in a
// hot loop while its caller keeps retrying.
func TestConnectionDenialIsPermissionDenied(t *testing.T) {
	var buf logtest.Buffer
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api := meshtest.Service(t, m, "api", ztnet.WithLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	intruder := meshtest.Service(t, m, "intruder")
	healthServer(t, api)
	// The user's interceptors, outer to grpcztn's, see the same error.
	userSaw := make(chan codes.Code, 1)
	hc := client(t, intruder, "api", grpc.WithChainUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			err := invoker(ctx, method, req, reply, cc, opts...)
			select {
			case userSaw <- status.Code(err):
			default:
			}
			return err
		}))
	const reason = "no intention matches (default deny)"

	wantDenied := func(err error) {
		t.Helper()
		wantStatus(t, err, codes.PermissionDenied, "intruder denied: "+reason)
		var d *ztnet.DeniedError
		if !errors.As(err, &d) {
			t.Fatalf("errors.As(%v, *ztnet.DeniedError) found none", err)
		}
		if d.Reason != reason || d.Source != intruder.ID().String() || d.Destination != "api" {
			t.Fatalf("DeniedError = %+v", d)
		}
	}
	start := time.Now()
	_, err := hc.Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
	wantDenied(err)
	if got := <-userSaw; got != codes.PermissionDenied {
		t.Fatalf("the user's client interceptor saw %v, want PermissionDenied", got)
	}
	ws, err := hc.Watch(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = ws.Recv()
	}
	wantDenied(err)

	// A caller that retries at once for 2 s: every RPC is refused with the
	// reason, and the server sees a connection attempt about every second
	// (gRPC's backoff: 1 s, then 1.6 s ...), not one per RPC.
	rpcs := 0
	for time.Since(start) < 2*time.Second {
		_, err := hc.Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
		wantDenied(err)
		rpcs++
	}
	refused := buf.Records(t, "ztn connection refused")
	if len(refused) == 0 || len(refused) > 3 {
		t.Fatalf("over 2 s and %d RPCs the server refused %d connections, want 1 to 3 (backoff):\n%s", rpcs, len(refused), buf.String())
	}
	t.Logf("%d RPCs, %d connection attempts", rpcs, len(refused))
}

// A server that presents another service's identity is rejected by the
// client: codes.Unavailable (another instance may do) with the reason, and
// the error holds the *ztnet.RejectedError.
func TestWrongServerIdentityIsRejectedError(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"db","Sources":[{"Name":"web","Action":"allow"}]}]`)
	db := meshtest.Service(t, m, "db")
	addr := healthServer(t, db)
	// web's catalog says api is at db's address.
	web := meshtest.Service(t, m, "web", ztnet.WithResolver(discovery.NewStatic(map[string][]discovery.Instance{
		"api": {{ID: "api-1", Address: addr}},
	})))
	_, err := client(t, web, "api").Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
	wantStatus(t, err, codes.Unavailable, `not service \"api\"`)
	var rejected *ztnet.RejectedError
	if !errors.As(err, &rejected) || !strings.Contains(rejected.Reason, `svc/db, not service "api"`) {
		t.Fatalf("errors.As(%v, *ztnet.RejectedError) = %v", err, rejected)
	}
	var denied *ztnet.DeniedError
	if errors.As(err, &denied) {
		t.Fatalf("errors.As(%v, *ztnet.DeniedError) found one", err)
	}
}

// An RPC whose context ended fails with the matching code, and errors.Is
// finds the context's error; an L7 refusal carries no DeniedError.
func TestRPCErrorsReachable(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, blueOnly)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	// Calls as tenant blue with x-hold wait in the server until the test
	// ends, whatever their context says.
	hold := make(chan struct{})
	healthServer(t, api, grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if len(metadata.ValueFromIncomingContext(ctx, "x-hold")) > 0 {
			<-hold
		}
		return h(ctx, req)
	}))
	t.Cleanup(func() { close(hold) }) // before the server stops
	hc := client(t, web, "api")
	blue := func(ctx context.Context) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "x-tenant", "blue")
	}

	ctx, cancel := context.WithCancel(blue(context.Background()))
	cancel()
	_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
	wantStatus(t, err, codes.Canceled, "")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled unary RPC: errors.Is(%v, context.Canceled) = false", err)
	}

	ctx, cancel = context.WithTimeout(metadata.AppendToOutgoingContext(blue(context.Background()), "x-hold", "1"), 300*time.Millisecond)
	defer cancel()
	_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{})
	wantStatus(t, err, codes.DeadlineExceeded, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unary RPC past its deadline: errors.Is(%v, context.DeadlineExceeded) = false", err)
	}

	// A stream canceled while it waits for a message.
	ctx, cancel = context.WithCancel(blue(context.Background()))
	defer cancel()
	ws, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Recv(); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = ws.Recv()
	wantStatus(t, err, codes.Canceled, "")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled stream: errors.Is(%v, context.Canceled) = false", err)
	}

	// Refused per RPC on an admitted connection: PermissionDenied, but no
	// connection-level DeniedError.
	_, err = hc.Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
	wantStatus(t, err, codes.PermissionDenied, "no permission matched")
	var denied *ztnet.DeniedError
	if errors.As(err, &denied) {
		t.Errorf("L7 refusal: errors.As found a *ztnet.DeniedError %+v", denied)
	}
}

// The transport credentials refuse a connection to another service than
// the authority names, with a *ztnet.RejectedError.
func TestCredentialsWrongAuthorityIsRejectedError(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	l, err := api.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := ztnhook.Of(web).DialAddress(poll.Context(t, 5*time.Second), "api", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = grpcztn.Credentials().ClientHandshake(context.Background(), "db:443", c)
	var rejected *ztnet.RejectedError
	if !errors.As(err, &rejected) || !strings.HasPrefix(err.Error(), "grpcztn: ") || !strings.Contains(rejected.Reason, `svc/api, not service "db"`) {
		t.Fatalf("ClientHandshake to api as db: err = %v, want a grpcztn *ztnet.RejectedError", err)
	}
	if _, _, err := grpcztn.Credentials().ClientHandshake(context.Background(), "api:443", c); err != nil {
		t.Fatalf("ClientHandshake to api as api: %v", err)
	}
}

// Listen's errors: a context that ended, and Accept on a closed listener.
func TestListenErrorsReachable(t *testing.T) {
	m := meshtest.Dev(t)
	api := meshtest.Service(t, m, "api")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if l, err := grpcztn.Listen(ctx, api, "tcp", "127.0.0.1:0"); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "grpcztn: ") {
		if l != nil {
			_ = l.Close()
		}
		t.Errorf("Listen with a canceled context: err = %v, want a grpcztn error holding context.Canceled", err)
	}
	l, err := grpcztn.Listen(context.Background(), api, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: err = %v, want net.ErrClosed", err)
	}
}

// stutter returns the first ": "-separated part of msg that repeats
// ("grpcztn: x: grpcztn: ..." repeats "grpcztn"), or "".
func stutter(msg string) string {
	seen := map[string]bool{}
	for _, part := range strings.Split(msg, ": ") {
		if seen[part] {
			return part
		}
		seen[part] = true
	}
	return ""
}

// The errors of a client and of a server name each package once.
func TestErrorsDoNotStutter(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[
	  {"Name":"web","Permissions":[{"Action":"allow","HTTP":{"PathExact":"/grpc.health.v1.Health/Check"}}]}]}]`)
	api, web, intruder := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web"), meshtest.Service(t, m, "intruder")
	healthServer(t, api)
	var msgs []string
	_, err := client(t, intruder, "api").Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
	wantStatus(t, err, codes.PermissionDenied, "grpcztn: ztnet: dial api")
	msgs = append(msgs, status.Convert(err).Message())
	s, err := client(t, web, "api").Watch(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = s.Recv()
	}
	wantStatus(t, err, codes.PermissionDenied, "grpcztn: "+web.ID().String()+" denied")
	msgs = append(msgs, status.Convert(err).Message())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := grpcztn.Listen(ctx, api, "tcp", "127.0.0.1:0"); err != nil {
		msgs = append(msgs, err.Error())
	}
	if _, err := grpcztn.NewClient(nil, "api"); err != nil {
		msgs = append(msgs, err.Error())
	}
	if len(msgs) != 4 {
		t.Fatalf("errors: %q", msgs)
	}
	for _, msg := range msgs {
		if strings.Count(msg, "grpcztn") != 1 || stutter(msg) != "" {
			t.Errorf("%q repeats %q", msg, stutter(msg))
		}
	}
}
