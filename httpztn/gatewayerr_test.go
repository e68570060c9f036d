package httpztn_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/ztnet"
)

// The gateway's public answers to refusals are generic, with a request id;
// the details (addresses, SPIFFE IDs, intentions, the service's own reason)
// are in its access record under the same request id.
func TestGatewayPublicErrorsAreGeneric(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[
	  {"Kind":"service-intentions","Name":"api","Sources":[{"Name":"gateway","Permissions":[
	    {"Action":"deny","HTTP":{"PathPrefix":"/admin"}},{"Action":"allow","HTTP":{"PathPrefix":"/"}}]}]},
	  {"Kind":"service-intentions","Name":"admin","Sources":[{"Name":"gateway","Action":"deny"}]},
	  {"Kind":"service-intentions","Name":"down","Sources":[{"Name":"gateway","Action":"allow"}]},
	  {"Kind":"service-intentions","Name":"gone","Sources":[{"Name":"gateway","Action":"allow"}]},
	  {"Kind":"service-intentions","Name":"crash","Sources":[{"Name":"gateway","Action":"allow"}]}]`)
	var logs logtest.Buffer
	gwSvc := meshtest.Service(t, m, "gateway", ztnet.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	api, admin, crash := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "admin"), meshtest.Service(t, m, "crash")
	serveHTTP(t, api, whoami)
	serveHTTP(t, admin, whoami)
	serveHTTP(t, crash, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	m.Catalog().Set("down", discovery.Instance{ID: "down-1", Address: "127.0.0.1:1"})
	gw, err := httpztn.NewGateway(gwSvc,
		httpztn.Route{Host: "api.example", Service: "api"},
		httpztn.Route{Host: "admin.example", Service: "admin"},
		httpztn.Route{Host: "down.example", Service: "down"},
		httpztn.Route{Host: "gone.example", Service: "gone"},
		httpztn.Route{Host: "crash.example", Service: "crash"},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	pub := httptest.NewServer(gw)
	defer pub.Close()
	addr := pub.Listener.Addr().String()

	idRE := regexp.MustCompile(`^([a-z ]+) \(request id ([0-9a-f]{16})\)\n$`)
	for _, tc := range []struct {
		host, path string
		code       int
		text       string
		reason     []string // in the access record
	}{
		{"nowhere.example", "/x", 404, "not found", []string{"no route"}},
		{"api.example", "/x/%2e%2e/admin", 400, "bad request", []string{"dot segment", "/x/%2e%2e/admin"}},
		{"api.example", "/admin", 403, "forbidden", []string{"spiffe://ztn.test/ns/default/dc/dc1/svc/gateway denied", "L7 intention gateway → api: permission 1"}},
		{"admin.example", "/x", 403, "forbidden", []string{"intention gateway → admin denies"}},
		{"down.example", "/x", 502, "bad gateway", []string{"127.0.0.1:1"}},
		{"gone.example", "/x", 503, "service unavailable", []string{"no healthy instance"}},
		{"crash.example", "/x", 502, "bad gateway", []string{"crash"}},
	} {
		code, body := rawGet(t, addr, tc.host, tc.path)
		sub := idRE.FindStringSubmatch(body)
		if code != tc.code || sub == nil || sub[1] != tc.text {
			t.Errorf("%s%s: %d %q, want %d %q with a request id", tc.host, tc.path, code, body, tc.code, tc.text)
			continue
		}
		for _, secret := range []string{"spiffe", "127.0.0.1", "intention", "httpztn", "ztn", "admin", "svc/", "denied", "permission", "instance", "dial"} {
			if strings.Contains(body, secret) {
				t.Errorf("%s%s: public body %q contains %q", tc.host, tc.path, body, secret)
			}
		}
		var rec map[string]any
		poll.Eventually(t, 5*time.Second, func() error {
			for _, r := range logs.Records(t, "ztn gateway request") {
				if r["request_id"] == sub[2] {
					rec = r
					return nil
				}
			}
			return fmt.Errorf("no access record with request id %s:\n%s", sub[2], logs.String())
		})
		reason, _ := rec["reason"].(string)
		for _, want := range tc.reason {
			if !strings.Contains(reason, want) {
				t.Errorf("%s%s: record reason %q lacks %q", tc.host, tc.path, reason, want)
			}
		}
		if rec["level"] != "WARN" || rec["status"] != float64(tc.code) {
			t.Errorf("%s%s: record %v", tc.host, tc.path, rec)
		}
	}
}

// The gateway drops every client-supplied forwarding header (Forwarded,
// X-Forwarded-*, X-Real-IP and the like) and the path-override headers some
// frameworks honour, and sets X-Forwarded-For/-Host/-Proto itself.
func TestGatewayStripsForwardingHeaders(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"gateway","Action":"allow"}]}]`)
	api, gwSvc := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "gateway")
	seen := make(chan http.Header, 1)
	serveHTTP(t, api, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.Header.Clone() }))
	gw, err := httpztn.NewGateway(gwSvc, httpztn.Route{Service: "api"})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	pub := httptest.NewServer(gw)
	defer pub.Close()
	spoofed := []string{"X-Real-IP", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Client-IP",
		"True-Client-IP", "X-Cluster-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP", "X-Original-URL",
		"X-Rewrite-URL", "X-Original-Forwarded-For"}
	var hdr []string
	for _, h := range spoofed {
		hdr = append(hdr, h, "6.6.6.6")
	}
	if code, body := rawGet(t, pub.Listener.Addr().String(), "shop.example", "/x", hdr...); code != 200 {
		t.Fatalf("%d %q", code, body)
	}
	h := <-seen
	for _, name := range spoofed {
		if strings.Contains(strings.Join(h.Values(name), ","), "6.6.6.6") {
			t.Errorf("%s: %q forwarded", name, h.Values(name))
		}
	}
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Host") != "shop.example" || h.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("gateway's forwarding headers: %v", h)
	}
}

// A Gateway used as a zero value answers 500 instead of panicking, and
// Close says to use NewGateway.
func TestZeroGateway(t *testing.T) {
	var g httpztn.Gateway
	w := httptest.NewRecorder()
	g.ServeHTTP(w, httptest.NewRequest("GET", "http://shop.example/x", nil))
	if w.Code != 500 || strings.Contains(w.Body.String(), "Gateway") {
		t.Errorf("zero Gateway: %d %q, want 500 with a generic body", w.Code, w.Body.String())
	}
	if err := g.Close(); err == nil || !strings.Contains(err.Error(), "NewGateway") {
		t.Errorf("Close: %v", err)
	}
	if _, err := httpztn.NewGateway(nil, httpztn.Route{Service: "api"}); err == nil {
		t.Errorf("NewGateway(nil) succeeded")
	}
}

// A route's Headers condition on Host reads the request's host (net/http
// keeps it out of Request.Header), as authorization does.
func TestGatewayRouteHostHeader(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"gateway","Action":"allow"}]}]`)
	api, gwSvc := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "gateway")
	serveHTTP(t, api, whoami)
	gw, err := httpztn.NewGateway(gwSvc, httpztn.Route{Headers: map[string]string{"host": "shop.example"}, Service: "api"})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	pub := httptest.NewServer(gw)
	defer pub.Close()
	for host, want := range map[string]int{"shop.example": 200, "other.example": 404} {
		if code, body := rawGet(t, pub.Listener.Addr().String(), host, "/x"); code != want {
			t.Errorf("Host %s: %d %q, want %d", host, code, body, want)
		}
	}
}
