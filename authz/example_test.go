package authz_test

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
)

// Intentions for "api": web may GET anything but /admin; everyone else is
// denied; and any service may reach "metrics".
const intentionsJSON = `[
  {
    "Kind": "service-intentions",
    "Name": "api",
    "Sources": [
      {
        "Name": "web",
        "Permissions": [
          {"Action": "deny",  "HTTP": {"PathPrefix": "/admin"}},
          {"Action": "allow", "HTTP": {"Methods": ["GET"]}}
        ]
      },
      {"Name": "*", "Action": "deny"}
    ]
  },
  {
    "kind": "service-intentions",
    "name": "metrics",
    "sources": [{"name": "*", "action": "allow"}]
  }
]`

func Example() {
	dir, err := os.MkdirTemp("", "authz-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "intentions.json")
	if err := os.WriteFile(path, []byte(intentionsJSON), 0o600); err != nil {
		log.Fatal(err)
	}

	policy := authz.NewPolicy() // default deny
	fmt.Println(policy.Authorize(authz.Request{
		Source:      svc("web"),
		Destination: svc("api"),
	}))

	if err := policy.LoadFile(path); err != nil {
		log.Fatal(err)
	}
	web, api := svc("web"), svc("api")

	// A plain connection: web's intention has L7 permissions only.
	fmt.Println(policy.Authorize(authz.Request{Source: web, Destination: api}))
	// The same connection on a listener that checks every request.
	fmt.Println(policy.Authorize(authz.Request{Source: web, Destination: api, AdmitL7: true}))

	for _, r := range []authz.HTTPRequest{
		{Method: http.MethodGet, Path: "/users"},
		{Method: http.MethodGet, Path: "/admin/users"},
		{Method: http.MethodPost, Path: "/users"},
	} {
		d := policy.Authorize(authz.Request{Source: web, Destination: api, HTTP: &r})
		fmt.Printf("%s %s: %v [%s]\n", r.Method, r.Path, d, d.Kind())
	}

	fmt.Println(policy.Authorize(authz.Request{Source: svc("batch"), Destination: api}))
	fmt.Println(policy.Authorize(authz.Request{Source: svc("batch"), Destination: svc("metrics")}))
	fmt.Println(policy.Authorize(authz.Request{Source: web, Destination: svc("db")}))

	// Output:
	// deny: policy not synced yet (deny)
	// deny: intention web → api has L7 permissions only, connection-level check denies
	// allow: intention web → api has L7 permissions, connection admitted for per-request checks
	// GET /users: allow: L7 intention web → api: permission 2 (GET) allows [l7_permission]
	// GET /admin/users: deny: L7 intention web → api: permission 1 (prefix /admin) denies [l7_permission]
	// POST /users: deny: L7 intention web → api: no permission matched (default deny) [l7_no_match]
	// deny: intention * → api denies (precedence 8)
	// allow: intention * → metrics allows (precedence 8)
	// deny: no intention matches (default deny)
}

// Set takes entries built in Go; Changed tells watchers that they changed.
func ExamplePolicy_Set() {
	policy := authz.NewPolicy(authz.WithDefaultAllow())
	changed := policy.Changed()

	err := policy.Set(authz.ConfigEntry{
		Name: "api",
		Sources: []authz.SourceIntention{
			{Name: "*", Action: authz.ActionDeny},
		},
	}, authz.ConfigEntry{
		Name: "*",
		Sources: []authz.SourceIntention{
			{Name: "web", Action: authz.ActionAllow},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	<-changed

	d := policy.Authorize(authz.Request{Source: svc("web"), Destination: svc("api")})
	fmt.Println(d.Allowed, d.Reason())
	d = policy.Authorize(authz.Request{Source: svc("web"), Destination: svc("db")})
	fmt.Println(d.Allowed, d.Reason())

	// An invalid entry changes nothing.
	err = policy.Set(authz.ConfigEntry{Name: "api", Sources: []authz.SourceIntention{{Name: "we*", Action: authz.ActionAllow}}})
	fmt.Println(err)
	fmt.Println(len(policy.Intentions()))

	// Output:
	// false intention * → api denies (precedence 8)
	// true intention web → * allows (precedence 6)
	// authz: entry "api": source 1 ("we*"): Name "we*": the wildcard "*" can only be the whole value
	// 2
}

// svc returns the identity of service name in trust domain example.org,
// datacenter dc1, as ztnet reads it from a peer's certificate.
func svc(name string) ztn.ServiceID {
	return ztn.NewServiceID(spiffeid.RequireTrustDomainFromString("example.org"), "dc1", name)
}
