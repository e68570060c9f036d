package certs_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/ztnlabs/ztn/certs"
)

// Two services of one DevCA talk mutual TLS, each authorizing the other's
// SPIFFE ID; their SVIDs rotate in the background.
func Example() {
	ctx := context.Background()
	td := spiffeid.RequireTrustDomainFromString("example.org")
	ca, err := certs.NewDevCA(td)
	if err != nil {
		log.Fatal(err)
	}
	server, err := ca.Source(ctx, "dc1", "api", time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	client, err := ca.Source(ctx, "dc1", "web", time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	web := spiffeid.RequireFromString("spiffe://example.org/ns/default/dc/dc1/svc/web")
	api := spiffeid.RequireFromString("spiffe://example.org/ns/default/dc/dc1/svc/api")
	ln, err := tls.Listen("tcp", "127.0.0.1:0",
		tlsconfig.MTLSServerConfig(server, server, tlsconfig.AuthorizeID(web)))
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = io.Copy(conn, conn) // echo
	}()

	conn, err := tls.Dial("tcp", ln.Addr().String(),
		tlsconfig.MTLSClientConfig(client, client, tlsconfig.AuthorizeID(api)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(conn, "hello")
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	conn.Close()
	<-served

	peer, _ := spiffeid.FromURI(conn.ConnectionState().PeerCertificates[0].URIs[0])
	fmt.Print("echo: ", reply)
	fmt.Println("server:", peer)
	// Output:
	// echo: hello
	// server: spiffe://example.org/ns/default/dc/dc1/svc/api
}

// A program that already holds its certificate and key (here issued by a
// DevCA; typically parsed with go-spiffe's x509svid.Parse and
// x509bundle.Parse) serves mutual TLS with them.
func ExampleNewStatic() {
	ctx := context.Background()
	ca, err := certs.NewDevCA(spiffeid.RequireTrustDomainFromString("example.org"))
	if err != nil {
		log.Fatal(err)
	}
	held := func(service string) certs.Source {
		id, err := ca.Issuer("dc1", service, time.Hour).Issue(ctx)
		if err != nil {
			log.Fatal(err)
		}
		src, err := certs.NewStatic(id.SVID, id.Bundles...)
		if err != nil {
			log.Fatal(err)
		}
		return src
	}
	server, client := held("api"), held("web")
	defer server.Close()
	defer client.Close()

	ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsconfig.MTLSServerConfig(server, server, tlsconfig.AuthorizeMemberOf(ca.TrustDomain())))
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = io.Copy(conn, conn) // echo
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), tlsconfig.MTLSClientConfig(client, client, tlsconfig.AuthorizeMemberOf(ca.TrustDomain())))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintln(conn, "hello")
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	peer, _ := spiffeid.FromURI(conn.ConnectionState().PeerCertificates[0].URIs[0])
	fmt.Print("echo: ", reply)
	fmt.Println("server:", peer)
	// Output:
	// echo: hello
	// server: spiffe://example.org/ns/default/dc/dc1/svc/api
}
