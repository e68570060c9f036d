package ztn_test

import (
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
)

// A peer's SPIFFE ID, as its certificate carries it, parsed into the
// service it names; an ID of another form is refused.
func ExampleParseServiceID() {
	id, err := ztn.ParseServiceID("spiffe://example.org/ns/default/dc/dc1/svc/web")
	if err != nil {
		panic(err)
	}
	fmt.Println(id.TrustDomain, id.Datacenter, id.Name)

	_, err = ztn.ParseServiceID("spiffe://example.org/agent/client/dc/dc1/id/node-1")
	fmt.Println(errors.Is(err, ztn.ErrNotService))
	// Output:
	// example.org dc1 web
	// true
}

// A service's own identity, made from its parts; its String is its SPIFFE
// ID.
func ExampleNewServiceID() {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	fmt.Println(ztn.NewServiceID(td, "dc1", "api"))
	fmt.Println(ztn.NewServiceID(td, "dc1", "not a name").Validate() != nil)
	// Output:
	// spiffe://example.org/ns/default/dc/dc1/svc/api
	// true
}
