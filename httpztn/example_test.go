package httpztn_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/ztnet"
)

// web calls api over ztn; an L7 intention lets it GET anything but /admin.
func Example() {
	ctx := context.Background()
	mesh, err := ztnet.NewDev(ztnet.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	defer mesh.Close()
	entries, err := authz.ParseConfigEntries([]byte(`[{"Kind":"service-intentions","Name":"api",
	  "Sources":[{"Name":"web","Permissions":[
	    {"Action":"deny","HTTP":{"PathPrefix":"/admin"}},
	    {"Action":"allow","HTTP":{"Methods":["GET"]}}]}]}]`))
	if err != nil {
		log.Fatal(err)
	}
	if err := mesh.Policy().Set(entries...); err != nil {
		log.Fatal(err)
	}
	api, err := mesh.Service(ctx, "api")
	if err != nil {
		log.Fatal(err)
	}
	web, err := mesh.Service(ctx, "web")
	if err != nil {
		log.Fatal(err)
	}

	l, err := httpztn.Listen(ctx, api, "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := httpztn.NewServer(api, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := httpztn.Peer(r)
		fmt.Fprintf(w, "hello %s over %s", id, r.Proto)
	}))
	go srv.Serve(l)
	defer srv.Close()

	c := httpztn.NewClient(web)
	defer c.CloseIdleConnections()
	for _, path := range []string{"/hello", "/admin"} {
		resp, err := c.Get("http://api" + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %s\n", resp.StatusCode, body)
	}
	// Output:
	// 200 hello spiffe://ztn.dev/ns/default/dc/dc1/svc/web over HTTP/2.0
	// 403 httpztn: spiffe://ztn.dev/ns/default/dc/dc1/svc/web denied: L7 intention web → api: permission 1 (prefix /admin) denies
}

// A gateway publishes the mesh service api on a plain HTTP port (use TLS
// with an ordinary web certificate in production): requests for
// shop.example under /api go to api, under the gateway's identity, which
// api's intentions allow; anything else is not found.
func ExampleNewGateway() {
	ctx := context.Background()
	mesh, err := ztnet.NewDev(ztnet.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	defer mesh.Close()
	entries, err := authz.ParseConfigEntries([]byte(`[{"Kind":"service-intentions","Name":"api",
	  "Sources":[{"Name":"gateway","Action":"allow"}]}]`))
	if err != nil {
		log.Fatal(err)
	}
	if err := mesh.Policy().Set(entries...); err != nil {
		log.Fatal(err)
	}
	api, err := mesh.Service(ctx, "api")
	if err != nil {
		log.Fatal(err)
	}
	gatewaySvc, err := mesh.Service(ctx, "gateway")
	if err != nil {
		log.Fatal(err)
	}

	// The service, in the mesh.
	l, err := httpztn.Listen(ctx, api, "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := httpztn.NewServer(api, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, _ := httpztn.Peer(r)
		fmt.Fprintf(w, "%s from %s for %s", r.URL.Path, caller.Name, r.Header.Get("X-Forwarded-Host"))
	}))
	go srv.Serve(l)
	defer srv.Close()

	// The gateway, on a public port.
	gw, err := httpztn.NewGateway(gatewaySvc,
		httpztn.Route{Host: "shop.example", PathPrefix: "/api", Service: "api"},
	)
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	public := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go public.Serve(pl)
	defer public.Close()

	// A browser, say.
	for _, path := range []string{"/api/items", "/apis", "/"} {
		req, err := http.NewRequest("GET", "http://"+pl.Addr().String()+path, nil)
		if err != nil {
			log.Fatal(err)
		}
		req.Host = "shop.example"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body = []byte(http.StatusText(resp.StatusCode)) // the body has a request id
		}
		fmt.Printf("%s: %d %s\n", path, resp.StatusCode, body)
	}
	// Output:
	// /api/items: 200 /api/items from gateway for shop.example
	// /apis: 404 Not Found
	// /: 404 Not Found
}

// With a retry policy, a GET that one instance answers with 503 is sent
// again to another instance, so the caller sees only successes.
func ExampleWithRetry() {
	ctx := context.Background()
	mesh, err := ztnet.NewDev(ztnet.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	defer mesh.Close()
	entries, err := authz.ParseConfigEntries([]byte(`[{"Kind":"service-intentions","Name":"api",
	  "Sources":[{"Name":"web","Action":"allow"}]}]`))
	if err != nil {
		log.Fatal(err)
	}
	if err := mesh.Policy().Set(entries...); err != nil {
		log.Fatal(err)
	}
	api, err := mesh.Service(ctx, "api")
	if err != nil {
		log.Fatal(err)
	}
	web, err := mesh.Service(ctx, "web")
	if err != nil {
		log.Fatal(err)
	}

	// Two instances of api: one overloaded, one fine.
	var overloaded atomic.Int64
	for _, h := range []http.HandlerFunc{
		func(w http.ResponseWriter, r *http.Request) {
			overloaded.Add(1)
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		},
		func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") },
	} {
		l, err := httpztn.Listen(ctx, api, "tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		srv := httpztn.NewServer(api, h)
		go srv.Serve(l)
		defer srv.Close()
	}

	c := httpztn.NewClient(web, httpztn.WithRetry(httpztn.RetryPolicy{
		MaxRetries:    2,
		PerTryTimeout: 2 * time.Second,
	}))
	defer c.CloseIdleConnections()
	for range 4 {
		resp, err := c.Get("http://api/votes")
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}
	fmt.Println("503s retried:", overloaded.Load())
	// Output:
	// 200 ok
	// 200 ok
	// 200 ok
	// 200 ok
	// 503s retried: 2
}
