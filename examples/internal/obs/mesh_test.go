package obs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ztnlabs/ztn/grpcztn"
	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/ztnet"
	"github.com/ztnlabs/ztn/ztnet/ztntest"
)

// threeHops is a small mesh whose services each have their own Telemetry
// and a plain-HTTP /metrics endpoint on loopback, as the examples' services
// will: "front" serves HTTP (httpztn) and answers each request by calling
// "back" over gRPC (grpcztn, the health service); "user" is the HTTP
// client. Intentions: user → front, front → back; nothing else.
type threeHops struct {
	mesh    *ztntest.Mesh
	svc     map[string]*ztnet.Service
	tel     map[string]*Telemetry
	metrics map[string]string // service → host:port of its /metrics
	user    *http.Client
}

const threeHopsIntentions = `[
	{"Kind": "service-intentions", "Name": "front", "Sources": [{"Name": "user", "Action": "allow"}]},
	{"Kind": "service-intentions", "Name": "back", "Sources": [{"Name": "front", "Action": "allow"}]}]`

// newThreeHops starts the mesh; spans go to the OTLP endpoint (none: not
// exported). devOpts configure the dev mesh (a short certificate life, to
// see rotations).
func newThreeHops(t *testing.T, endpoint string, devOpts ...ztnet.DevOption) *threeHops {
	t.Helper()
	ctx := t.Context()
	m := &threeHops{mesh: ztntest.NewMesh(t, devOpts...), svc: map[string]*ztnet.Service{},
		tel: map[string]*Telemetry{}, metrics: map[string]string{}}
	m.mesh.SetIntentionsJSON(threeHopsIntentions)
	for _, name := range []string{"user", "front", "back", "intruder"} {
		tel, err := Setup(ctx, name, WithGetenv(env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)), WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { // t.Context() is done by now
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tel.Shutdown(ctx); err != nil {
				t.Error(err)
			}
		})
		srv := httptest.NewServer(tel.Handler())
		t.Cleanup(srv.Close)
		m.tel[name], m.metrics[name] = tel, strings.TrimPrefix(srv.URL, "http://")
		m.svc[name] = m.mesh.Service(name, tel.ZtnOptions()...)
	}

	back := grpcztn.NewServer(m.svc["back"])
	healthpb.RegisterHealthServer(back, health.NewServer())
	l, err := grpcztn.Listen(ctx, m.svc["back"], "tcp", "127.0.0.1:0")
	serve(t, l, err, back.Serve, back.Stop)

	cc, err := grpcztn.NewClient(m.svc["front"], "back")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	backClient := healthpb.NewHealthClient(cc)
	front := httpztn.NewServer(m.svc["front"], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := backClient.Check(r.Context(), &healthpb.HealthCheckRequest{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, "back is", resp.GetStatus())
	}))
	l, err = httpztn.Listen(ctx, m.svc["front"], "tcp", "127.0.0.1:0")
	serve(t, l, err, front.Serve, func() { _ = front.Close() })

	m.user = httpztn.NewClient(m.svc["user"])
	t.Cleanup(m.user.CloseIdleConnections)
	return m
}

// serve runs serveFn on l (from a Listen that returned err) until the test
// ends, when stop stops it.
func serve(t *testing.T, l net.Listener, err error, serveFn func(net.Listener) error, stop func()) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = serveFn(l) }()
	t.Cleanup(func() { stop(); <-done })
}

// get makes a request as user to front and returns the status.
func (m *threeHops) get(t *testing.T) int {
	t.Helper()
	resp, err := m.user.Get("http://front/")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
