package httpztn_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/ztnhook"
)

// Header conditions on Host and :authority read the request's authority
// (net/http keeps it in Request.Host, not in the headers), over HTTP/1.1 and
// HTTP/2, as Envoy maps both names to :authority.
func TestHostAndAuthorityHeaderConditions(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[
	  {"Action":"deny","HTTP":{"Header":[{"Name":"Host","Exact":"internal.api"}]}},
	  {"Action":"deny","HTTP":{"Header":[{"Name":":authority","Exact":"secret.api"}]}},
	  {"Action":"deny","HTTP":{"Header":[{"Name":"host","Suffix":".corp","IgnoreCase":true}]}},
	  {"Action":"allow","HTTP":{"PathPrefix":"/"}}]}]}]`)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	serveHTTP(t, api, whoami)
	for _, opts := range [][]httpztn.Option{nil, {httpztn.WithHTTP1()}} {
		c := newClient(t, web, opts...)
		for _, tc := range []struct {
			host string
			code int
			body string
		}{
			{"internal.api", 403, "permission 1"},
			{"secret.api", 403, "permission 2"},
			{"x.CORP", 403, "permission 3"},
			{"api", 200, "/x"},
			{"public.api", 200, "/x"},
		} {
			code, body := doHost(t, c, "GET", "http://api/x", tc.host)
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Errorf("http1=%v Host %s: %d %q, want %d containing %q", opts != nil, tc.host, code, body, tc.code, tc.body)
			}
		}
	}
}

// A rule naming GET covers HEAD (which net/http serves with the GET
// handler), and methods match whatever their case, over both protocols.
func TestMethodRulesCoverHEADAndCase(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[
	  {"Action":"deny","HTTP":{"PathPrefix":"/admin","Methods":["GET"]}},
	  {"Action":"deny","HTTP":{"PathPrefix":"/ops","Methods":["delete"]}},
	  {"Action":"allow","HTTP":{"PathPrefix":"/"}}]}]}]`)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	serveHTTP(t, api, whoami)
	for _, opts := range [][]httpztn.Option{nil, {httpztn.WithHTTP1()}} {
		c := newClient(t, web, opts...)
		for _, tc := range []struct {
			method, path string
			code         int
		}{
			{"GET", "/admin", 403},
			{"HEAD", "/admin", 403},
			{"get", "/admin", 403},
			{"head", "/admin", 403},
			{"Get", "/admin/x", 403},
			{"POST", "/admin", 200},
			{"DELETE", "/ops", 403},
			{"delete", "/ops", 403},
			{"GET", "/ops", 200},
			{"HEAD", "/x", 200},
		} {
			if code, body := do(t, c, tc.method, "http://api"+tc.path); code != tc.code {
				t.Errorf("http1=%v %s %s: %d %q, want %d", opts != nil, tc.method, tc.path, code, body, tc.code)
			}
		}
	}
	// A raw lower-case method over HTTP/1.1 is judged the same.
	addr := serveHTTP(t, api, whoami)
	c, err := ztnhook.Of(web).DialAddress(context.Background(), "api", addr, "http/1.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, method := range []string{"get", "gEt", "HEAD"} {
		if code, _ := rawRequest(t, c, method, "api", "/admin"); code != 403 {
			t.Errorf("raw %s /admin: %d, want 403", method, code)
		}
	}
}

// doHost is do with Request.Host set to host.
func doHost(t testing.TB, c *http.Client, method, url, host string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
