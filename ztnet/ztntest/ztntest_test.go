package ztntest_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/ztnet"
	"github.com/ztnlabs/ztn/ztnet/ztntest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// When the test ends, its mesh closes every Service, listener and
// connection, and waits for Serve's handlers.
func TestMeshClosesAtTestEnd(t *testing.T) {
	var (
		svc      *ztnet.Service
		conn     net.Conn
		returned = make(chan struct{})
	)
	t.Run("test", func(t *testing.T) {
		mesh := ztntest.NewMesh(t)
		mesh.SetIntentionsJSON(`[{"Kind": "service-intentions", "Name": "api", "Sources": [{"Name": "web", "Action": "allow"}]}]`)
		mesh.Serve("api", func(c net.Conn) {
			defer close(returned)
			_, _ = io.Copy(c, c) // until the mesh closes c
		})
		c, err := mesh.Dial("web", "api")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 2)); err != nil { // the handler runs
			t.Fatal(err)
		}
		svc, conn = mesh.Service("api"), c
		if err := svc.Ready(); err != nil {
			t.Fatal(err)
		}
	})
	select {
	case <-returned:
	default:
		t.Error("the handler had not returned when the test ended")
	}
	if err := svc.Ready(); err == nil {
		t.Error("a Service of the mesh is still ready after the test")
	}
	if _, err := conn.Write([]byte("more")); err == nil {
		t.Error("a connection Dial made is still open after the test")
	}
}

// Setup errors fail the test, with what went wrong.
func TestSetupErrorsFailTheTest(t *testing.T) {
	for _, tc := range []struct {
		name string
		body func(t testing.TB)
		want string
	}{
		{"bad trust domain", func(t testing.TB) { ztntest.NewMesh(t, ztnet.WithDevTrustDomain("Not A TD")) },
			`ztntest: ztnet: dev mesh: trust domain "Not A TD"`},
		{"bad intentions", func(t testing.TB) { ztntest.NewMesh(t).SetIntentionsJSON(`{"Kind": "service-intentions"`) },
			"ztntest: intentions: "},
		{"options for an existing service", func(t testing.TB) {
			m := ztntest.NewMesh(t)
			m.Service("api")
			m.Service("api", ztnet.WithoutResumption())
		}, "ztntest: service api exists already"},
		{"bad service name", func(t testing.TB) { ztntest.NewMesh(t).Service("no/slash") }, "ztntest: ztnet: dev service no/slash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failed := newFakeTB(io.Discard).run(tc.body)
			if len(failed) != 1 || !strings.HasPrefix(failed[0], tc.want) {
				t.Fatalf("failures %q, want one starting %q", failed, tc.want)
			}
		})
	}
	// And a refusal is an error of Dial, not a failure.
	var err error
	failed := newFakeTB(io.Discard).run(func(t testing.TB) {
		mesh := ztntest.NewMesh(t)
		mesh.Serve("api", func(net.Conn) {})
		_, err = mesh.Dial("web", "api")
	})
	var denied *ztnet.DeniedError
	if len(failed) != 0 || !errors.As(err, &denied) {
		t.Fatalf("failures %q, Dial error %v; want none and a *ztnet.DeniedError", failed, err)
	}
}

// Refusals go to the test's output, accepted connections do not; a logger
// given to NewMesh replaces it.
func TestLogsGoToTheTest(t *testing.T) {
	scenario := func(mesh *ztntest.Mesh) {
		mesh.SetIntentionsJSON(`{"Kind": "service-intentions", "Name": "api", "Sources": [{"Name": "web", "Action": "allow"}]}`)
		mesh.Serve("api", func(net.Conn) {})
		if c, err := mesh.Dial("web", "api"); err == nil {
			c.Close()
		}
		_, _ = mesh.Dial("intruder", "api")
	}
	var out logtest.Buffer
	newFakeTB(&out).run(func(t testing.TB) { scenario(ztntest.NewMesh(t)) })
	if s := out.String(); !strings.Contains(s, "ztn connection refused") || strings.Contains(s, `msg="ztn connection" `) {
		t.Errorf("test output:\n%s\nwant the refusal and no access record", s)
	}

	var out2, own logtest.Buffer
	debug := slog.New(slog.NewTextHandler(&own, &slog.HandlerOptions{Level: slog.LevelDebug}))
	newFakeTB(&out2).run(func(t testing.TB) { scenario(ztntest.NewMesh(t, ztnet.WithLogger(debug))) })
	if out2.String() != "" || !strings.Contains(own.String(), `msg="ztn connection" `) {
		t.Errorf("test output:\n%s\nlogger's:\n%s\nwant nothing in the first, the full access log in the second", out2.String(), own.String())
	}
}
