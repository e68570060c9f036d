package httpztn_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/ztnet"
)

// web calls api over ztn; an L7 intention lets it GET anything but /admin.
func Example() {
	ctx := context.Background()
	mesh, err := ztnet.NewDev(ztnet.WithLogger(discard))
	if err != nil {
		log.Fatal(err)
	}
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
	defer api.Close()
	web, err := mesh.Service(ctx, "web")
	if err != nil {
		log.Fatal(err)
	}
	defer web.Close()

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
