package httpztn_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/ztnet"
)

// The errors ztnet promises reach a caller of the HTTP client with
// errors.As / errors.Is: a refusal by the server's policy, a server with
// the wrong identity, the request's context ending.
func TestClientErrorsReachable(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"}]}]`)
	api := meshtest.Service(t, m, "api")
	web := meshtest.Service(t, m, "web")
	intruder := meshtest.Service(t, m, "intruder")
	addr := serveHTTP(t, api, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	m.Catalog().Set("billing", discovery.Instance{ID: "b1", Address: addr}) // served by api
	stalled, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	m.Catalog().Set("stalled", discovery.Instance{ID: "s1", Address: stalled.Addr().String()})

	get := func(svc *ztnet.Service, url string, d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := newClient(t, svc).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	var denied *ztnet.DeniedError
	if err := get(intruder, "http://api/", 5*time.Second); !errors.As(err, &denied) {
		t.Errorf("denied: %v (%T), want a *ztnet.DeniedError", err, err)
	}
	var rejected *ztnet.RejectedError
	if err := get(web, "http://billing/", 5*time.Second); !errors.As(err, &rejected) {
		t.Errorf("wrong identity: %v (%T), want a *ztnet.RejectedError", err, err)
	}
	if err := get(web, "http://stalled/", 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stalled: %v (%T), want context.DeadlineExceeded", err, err)
	}
	if err := get(web, "http://nothing/", 5*time.Second); !errors.Is(err, ztnet.ErrNoInstance) {
		t.Errorf("no instance: %v (%T), want ztnet.ErrNoInstance", err, err)
	}
}

// stutter returns the first part of msg that repeats within one of its
// "; "-separated errors ("httpztn: gateway: httpztn: ..." repeats
// "httpztn"), or "".
func stutter(msg string) string {
	for _, item := range strings.Split(msg, "; ") {
		seen := map[string]bool{}
		for _, part := range strings.Split(item, ": ") {
			if seen[part] {
				return part
			}
			seen[part] = true
		}
	}
	return ""
}

// Errors name each package once, and a failure on one instance is not
// reported as "every instance failed": for the client, and in the
// gateway's access records.
func TestErrorsDoNotStutter(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"}]},
	  {"Kind":"service-intentions","Name":"*","Sources":[{"Name":"gateway","Action":"allow"}]}]`)
	api := meshtest.Service(t, m, "api")
	web, intruder := meshtest.Service(t, m, "web"), meshtest.Service(t, m, "intruder")
	addr := serveHTTP(t, api, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	m.Catalog().Set("billing", discovery.Instance{ID: "b1", Address: addr}) // served by api
	m.Catalog().Set("down", discovery.Instance{ID: "d1", Address: "127.0.0.1:1"})
	m.Catalog().Set("down2", discovery.Instance{ID: "d1", Address: "127.0.0.1:1"}, discovery.Instance{ID: "d2", Address: "127.0.0.1:2"})

	for _, tc := range []struct {
		from *ztnet.Service
		url  string
		want string // a prefix of the error's text after Get "url":
	}{
		{web, "http://nosuch/", "httpztn: nosuch: no healthy instance"},
		{web, "http://down/", "httpztn: ztnet: dial down at 127.0.0.1:1: "},
		{web, "http://down2/", "httpztn: 2 attempts failed: ztnet: dial down2 at 127.0.0.1:"},
		{intruder, "http://api/", "httpztn: ztnet: dial api"},
		{web, "http://billing/", "httpztn: ztnet: dial billing"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", tc.url, nil)
		resp, err := newClient(t, tc.from).Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: no error", tc.url)
			continue
		}
		msg := strings.TrimPrefix(err.Error(), `Get "`+tc.url+`": `)
		if !strings.HasPrefix(msg, tc.want) || stutter(msg) != "" || strings.Contains(msg, "every instance") {
			t.Errorf("%s: %q, want %q... without a repeated part (%q)", tc.url, msg, tc.want, stutter(msg))
		}
	}
	if s := stutter("httpztn: gateway: httpztn: nosuch: no healthy instance"); s != "httpztn" {
		t.Errorf("stutter finds %q", s)
	}

	var logs logtest.Buffer
	gwSvc := meshtest.Service(t, m, "gateway", ztnet.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	gw, err := httpztn.NewGateway(gwSvc, httpztn.Route{Host: "nosuch.example", Service: "nosuch"}, httpztn.Route{Service: "down"})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	pub := httptest.NewServer(gw)
	defer pub.Close()
	rawGet(t, pub.Listener.Addr().String(), "nosuch.example", "/x")
	rawGet(t, pub.Listener.Addr().String(), "down.example", "/x")
	recs := logs.Records(t, "ztn gateway request")
	if len(recs) != 2 {
		t.Fatalf("%d records:\n%s", len(recs), logs.String())
	}
	for i, want := range []string{"httpztn: nosuch: no healthy instance", "httpztn: ztnet: dial down at 127.0.0.1:1: "} {
		if r, _ := recs[i]["reason"].(string); !strings.HasPrefix(r, want) || stutter(r) != "" {
			t.Errorf("gateway record reason %q, want %q... without a repeated part", r, want)
		}
	}
	if _, err := httpztn.NewGateway(gwSvc, httpztn.Route{}); err == nil || stutter(err.Error()) != "" || strings.Count(err.Error(), "httpztn") != 1 {
		t.Errorf("NewGateway: %v", err)
	}
}
