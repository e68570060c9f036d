package ztnet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/ztnet"
)

// A whole mesh in one process: "web" may call "fortune", "intruder" may not.
func Example() {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler) // the default, slog.Default(), logs refusals
	mesh, err := ztnet.NewDev(ztnet.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	defer mesh.Close()
	entries, err := authz.ParseConfigEntries([]byte(`{
		"Kind": "service-intentions", "Name": "fortune",
		"Sources": [{"Name": "web", "Action": "allow"}]}`))
	if err != nil {
		panic(err)
	}
	if err := mesh.Policy().Set(entries...); err != nil {
		panic(err)
	}

	fortune, err := mesh.Service(ctx, "fortune")
	if err != nil {
		panic(err)
	}
	l, err := fortune.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := l.Accept() // only authorized peers get here
			if err != nil {
				return
			}
			peer, _ := ztnet.Peer(c)
			fmt.Fprintf(c, "Trust, but verify, %s.\n", peer.Name)
			c.Close()
		}
	}()

	web, err := mesh.Service(ctx, "web")
	if err != nil {
		panic(err)
	}
	c, err := web.Dial(ctx, "fortune")
	if err != nil {
		panic(err)
	}
	msg, _ := io.ReadAll(c)
	c.Close()
	fmt.Print(string(msg))

	intruder, err := mesh.Service(ctx, "intruder")
	if err != nil {
		panic(err)
	}
	_, err = intruder.Dial(ctx, "fortune")
	fmt.Println(err)
	// Output:
	// Trust, but verify, web.
	// ztnet: dial fortune: spiffe://ztn.dev/ns/default/dc/dc1/svc/intruder denied: no intention matches (default deny)
}

// New assembles a Service from its parts: an identity source, the
// intentions that admit its callers, and a catalog to find and register
// instances. Here they are all in memory; in production they are Vault or
// the SPIFFE Workload API, Consul's intentions and Consul's catalog.
func ExampleNew() {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	ca, err := certs.NewDevCA(spiffeid.RequireTrustDomainFromString("example.org"))
	if err != nil {
		panic(err)
	}
	intentions := authz.NewPolicy()
	err = intentions.Set(authz.ConfigEntry{Name: "api", Sources: []authz.SourceIntention{{Name: "web", Action: authz.ActionAllow}}})
	if err != nil {
		panic(err)
	}
	catalog := discovery.NewStatic(nil)

	// api listens; its listener registers in the catalog.
	apiIdentity, err := ca.Source(ctx, "dc1", "api", time.Hour, certs.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	defer apiIdentity.Close()
	api, err := ztnet.New(ctx, "api",
		ztnet.WithSource(apiIdentity), ztnet.WithAuthorizer(intentions), ztnet.WithRegistrar(catalog))
	if err != nil {
		panic(err)
	}
	defer api.Close()
	l, err := api.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			peer, _ := ztnet.Peer(c)
			fmt.Fprintf(c, "hello, %s\n", peer.Name)
			c.Close()
		}
	}()

	// web dials api by name.
	webIdentity, err := ca.Source(ctx, "dc1", "web", time.Hour, certs.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	defer webIdentity.Close()
	web, err := ztnet.New(ctx, "web", ztnet.WithSource(webIdentity), ztnet.WithResolver(catalog))
	if err != nil {
		panic(err)
	}
	defer web.Close()
	c, err := web.Dial(ctx, "api")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	peer, _ := ztnet.Peer(c)
	msg, _ := io.ReadAll(c)
	fmt.Printf("%s says %s", peer, msg)
	// Output:
	// spiffe://example.org/ns/default/dc/dc1/svc/api says hello, web
}

// Options of Services given to NewDev apply to every Service of the mesh:
// here, one logger for the whole mesh; a Service given its own overrides
// it.
func ExampleNewDev() {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler) // e.g. one at Debug, for the full access log
	mesh, err := ztnet.NewDev(
		ztnet.WithDevTrustDomain("example.org"),
		ztnet.WithDevDatacenter("eu1"),
		ztnet.WithLogger(logger),
	)
	if err != nil {
		panic(err)
	}
	defer mesh.Close() // closes every Service it made

	api, err := mesh.Service(ctx, "api")
	if err != nil {
		panic(err)
	}
	fmt.Println(api.ID())
	fmt.Println("ready:", api.Ready() == nil) // no intentions yet: the policy cannot decide
	if err := mesh.Policy().Set(); err != nil {
		panic(err)
	}
	fmt.Println("ready:", api.Ready() == nil)
	// Output:
	// spiffe://example.org/ns/default/dc/eu1/svc/api
	// ready: false
	// ready: true
}

// Dial's errors say what went wrong, and errors.As and errors.Is tell the
// cases apart.
func ExampleService_Dial() {
	ctx := context.Background()
	mesh, err := ztnet.NewDev(ztnet.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	defer mesh.Close()
	if err := mesh.Policy().Set(); err != nil { // no intentions: everything is denied
		panic(err)
	}
	api, err := mesh.Service(ctx, "api")
	if err != nil {
		panic(err)
	}
	if _, err := api.Listen(ctx, "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	web, err := mesh.Service(ctx, "web")
	if err != nil {
		panic(err)
	}

	_, err = web.Dial(ctx, "api")
	var denied *ztnet.DeniedError
	if errors.As(err, &denied) {
		fmt.Println("denied:", denied.Reason)
	}
	_, err = web.Dial(ctx, "billing")
	fmt.Println(errors.Is(err, ztnet.ErrNoInstance), err)
	// Output:
	// denied: no intention matches (default deny)
	// true ztnet: dial billing: no healthy instance
}

// Peer tells who is on the other end of a connection, on both sides.
func ExamplePeer() {
	ctx := context.Background()
	mesh, err := ztnet.NewDev(ztnet.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	defer mesh.Close()
	entries, err := authz.ParseConfigEntries([]byte(`{"Kind": "service-intentions", "Name": "api", "Sources": [{"Name": "web", "Action": "allow"}]}`))
	if err != nil {
		panic(err)
	}
	if err := mesh.Policy().Set(entries...); err != nil {
		panic(err)
	}
	api, err := mesh.Service(ctx, "api")
	if err != nil {
		panic(err)
	}
	l, err := api.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	callers := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		peer, _ := ztnet.Peer(c)
		callers <- peer.Name
	}()
	web, err := mesh.Service(ctx, "web")
	if err != nil {
		panic(err)
	}
	c, err := web.Dial(ctx, "api")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	server, _ := ztnet.Peer(c)
	fmt.Println("web reached", server)
	fmt.Println("api was called by", <-callers)

	_, ok := ztnet.Peer(&net.TCPConn{}) // not a ztn connection
	fmt.Println(ok)
	// Output:
	// web reached spiffe://ztn.dev/ns/default/dc/dc1/svc/api
	// api was called by web
	// false
}

// Two meshes with their own certificate authorities, the local ztn.dev and
// a partner's partner.example, federate: each side's identity source also
// carries the other's trust bundle (federatedSource, below, stands for
// SPIFFE federation). web dials the partner's api as a remote service; the
// partner's intentions admit web as a service of its peer.
func ExampleWithRemoteService() {
	ctx := context.Background()
	quiet := ztnet.WithLogger(slog.New(slog.DiscardHandler))
	local, err := ztnet.NewDev(quiet)
	if err != nil {
		panic(err)
	}
	defer local.Close()
	partner, err := ztnet.NewDev(quiet, ztnet.WithDevTrustDomain("partner.example"))
	if err != nil {
		panic(err)
	}
	defer partner.Close()
	localTD, partnerTD := local.CA().TrustDomain(), partner.CA().TrustDomain()

	// The partner's api admits web of the peer "ztn.dev".
	err = partner.Policy().Set(authz.ConfigEntry{Name: "api", Sources: []authz.SourceIntention{
		{Name: "web", Peer: "ztn.dev", Action: authz.ActionAllow},
	}})
	if err != nil {
		panic(err)
	}
	apiIdentity := federatedSource(ctx, partner.CA(), local.CA(), "api")
	defer apiIdentity.Close()
	api, err := partner.Service(ctx, "api",
		ztnet.WithSource(apiIdentity), ztnet.WithFederatedPeer("ztn.dev", localTD))
	if err != nil {
		panic(err)
	}
	l, err := api.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			peer, _ := ztnet.Peer(c)
			fmt.Fprintf(c, "hello, %s\n", peer)
			c.Close()
		}
	}()

	// The local web finds api in the partner's catalog and expects it in
	// the partner's trust domain.
	webIdentity := federatedSource(ctx, local.CA(), partner.CA(), "web")
	defer webIdentity.Close()
	web, err := local.Service(ctx, "web",
		ztnet.WithSource(webIdentity),
		ztnet.WithFederatedPeer("partner.example", partnerTD),
		ztnet.WithRemoteService("api", partnerTD),
		ztnet.WithResolver(partner.Catalog()))
	if err != nil {
		panic(err)
	}
	c, err := web.Dial(ctx, "api")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	peer, _ := ztnet.Peer(c)
	msg, _ := io.ReadAll(c)
	fmt.Printf("%s says %s", peer, msg)
	// Output:
	// spiffe://partner.example/ns/default/dc/dc1/svc/api says hello, spiffe://ztn.dev/ns/default/dc/dc1/svc/web
}

// federatedSource returns an identity source for service, issued by ca,
// that also carries the trust bundle of other, as SPIFFE federation gives
// a workload its partners' bundles.
func federatedSource(ctx context.Context, ca, other *certs.DevCA, service string) *certs.Rotator {
	r, err := certs.NewRotator(ctx, withBundle{ca.Issuer("dc1", service, time.Hour), other},
		certs.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	return r
}

// withBundle is an Issuer that adds other's trust bundle to each issuance.
type withBundle struct {
	certs.Issuer
	other *certs.DevCA
}

func (w withBundle) Issue(ctx context.Context) (*certs.Identity, error) {
	id, err := w.Issuer.Issue(ctx)
	if err != nil {
		return nil, err
	}
	id.Bundles = append(id.Bundles, w.other.Bundle())
	return id, nil
}
