package httpztn_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/discovery"
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
