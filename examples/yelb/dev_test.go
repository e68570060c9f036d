package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/examples/internal/localdb"
	"github.com/ztnlabs/ztn/examples/yelb/internal/yelbtest"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/ztnet"
)

// requireStores skips the test when Postgres or Redis is not installed
// (fails under ZTN_REQUIRE_TOOLS, as testenv does).
func requireStores(t testing.TB) {
	t.Helper()
	if m := localdb.Find().Missing(); m != "" {
		msg := "not installed: " + m + " (scripts/deps.sh installs them)"
		switch strings.ToLower(os.Getenv("ZTN_REQUIRE_TOOLS")) {
		case "", "0", "false", "no":
			t.Skip(msg)
		}
		t.Fatal(msg + " (ZTN_REQUIRE_TOOLS is set)")
	}
}

func startDevT(t testing.TB, cfg devConfig) *devApp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg.Addr = "127.0.0.1:0"
	app, err := startDev(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.close(ctx); err != nil {
			t.Error(err)
		}
	})
	return app
}

// The API table through gateway → ui → appserver on the dev mesh, on the
// in-memory store and on real Postgres and Redis; methods other than GET
// are refused by the ui → appserver intention (GET /api/... only) and
// reach no app server.
func TestDevConformance(t *testing.T) {
	for _, tc := range []struct {
		name   string
		memory bool
	}{{"memory", true}, {"postgres-redis", false}} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.memory {
				requireStores(t)
			}
			app := startDevT(t, devConfig{Hostnames: []string{"appserver-1"}, Memory: tc.memory})
			if got := strings.HasPrefix(app.Store, "IN-MEMORY"); got != tc.memory {
				t.Fatalf("store: %s", app.Store)
			}
			base := strings.TrimSuffix(app.URL, "/")
			yelbtest.Conformance(t, base, "appserver-1")
			for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
				if a := yelbtest.Do(t, m, base, "/api/ihop"); a.Code != http.StatusForbidden {
					t.Errorf("%s /api/ihop = %d %q; want 403 from the intention", m, a.Code, a.Body)
				}
			}
			for _, p := range []string{"/api/ihop%2F", "/api"} { // refused by the path rules, by the intention
				if a := yelbtest.Do(t, http.MethodGet, base, p); a.Code != http.StatusBadRequest && a.Code != http.StatusForbidden {
					t.Errorf("GET %s = %d %q; want 400 or 403", p, a.Code, a.Body)
				}
			}
			yelbtest.Expect(t, base, "/api/getvotes", 200, yelbtest.VotesJSON(2, 2, 3, 2))
			if a := yelbtest.Do(t, http.MethodGet, base, "/"); a.Code != 200 || !strings.Contains(a.Body, "Welcome to Yelb") {
				t.Errorf("GET / = %d", a.Code)
			}
		})
	}
}

// Two app servers: the ui's requests go to both.
func TestDevTwoAppServers(t *testing.T) {
	app := startDevT(t, devConfig{Memory: true})
	base := strings.TrimSuffix(app.URL, "/")
	seen := map[string]int{}
	for range 10 {
		seen[yelbtest.Expect(t, base, "/api/hostname", 200, "").Body]++
	}
	if len(seen) != 2 || seen["appserver-1"] == 0 || seen["appserver-2"] == 0 {
		t.Errorf("hostnames %v; want appserver-1 and appserver-2", seen)
	}
}

// Only the ui reaches the app servers, and only the gateway the ui: other
// services are refused at the handshake with the reason.
func TestDevIntentions(t *testing.T) {
	app := startDevT(t, devConfig{Memory: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	intruder, err := app.mesh.Service(ctx, "intruder")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := app.mesh.Service(ctx, gatewayName)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from *ztnet.Service
		to   string
	}{{intruder, appName}, {intruder, uiName}, {gw, appName}} {
		c, err := tc.from.Dial(ctx, tc.to)
		var denied *ztnet.DeniedError
		if !errors.As(err, &denied) {
			if c != nil {
				c.Close()
			}
			t.Errorf("%s → %s: %v; want denied", tc.from.ID().Name, tc.to, err)
			continue
		}
		t.Logf("%s → %s refused: %v", tc.from.ID().Name, tc.to, err)
	}
}

// runDev says where to open the app and, on the in-memory store, says so
// loudly; it stops when ctx ends.
func TestRunDev(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out logtest.Buffer
	done := make(chan error, 1)
	go func() { done <- runDev(ctx, &out, devConfig{Addr: "127.0.0.1:0", Memory: true}) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "yelb: open http://") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no URL printed:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s := out.String()
	url := strings.TrimSpace(s[strings.Index(s, "yelb: open ")+len("yelb: open "):])
	resp, err := http.Get(url)
	if err != nil {
		t.Error(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(b, []byte("<title>Yelb</title>")) {
			t.Errorf("GET %s: %d", url, resp.StatusCode)
		}
	}
	if !strings.Contains(s, "!!! yelb: IN-MEMORY STORE (-memory)") {
		t.Errorf("the in-memory store is not announced loudly:\n%s", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}
