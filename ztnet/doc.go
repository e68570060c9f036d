// Package ztnet makes zero-trust connections between services:
// [Service.Listen] and [Service.Dial] over mutual TLS 1.3 where both ends
// are SPIFFE identities, certificates rotate on their own, and intentions
// authorize every connection before either side sees a byte.
//
// # Services
//
// A [Service] is one named service's view of the mesh. [New] ties together
// where its identity comes from (a [certs.Source], [WithSource]), the
// intentions that admit its callers (an [authz.Authorizer],
// [WithAuthorizer]) and how it finds other services (a
// [discovery.Resolver], [WithResolver]):
//
//	svc, err := ztnet.New(ctx, "web",
//		ztnet.WithSource(source),         // e.g. a certs.Rotator
//		ztnet.WithAuthorizer(intentions), // e.g. an authz.Policy
//		ztnet.WithResolver(catalog),      // e.g. a discovery.Static
//	)
//	l, err := svc.Listen(ctx, "tcp", ":8080") // Accept returns authorized connections only
//	c, err := svc.Dial(ctx, "api")            // fails here if api refuses web
//	server, _ := ztnet.Peer(c)                // spiffe://example.org/ns/default/dc/dc1/svc/api
//
// [NewDev] runs a whole mesh in the process (a certificate authority in
// memory, intentions, a catalog) for development and demos; package
// [github.com/ztnlabs/ztn/ztnet/ztntest] binds one to a test. The gRPC and
// HTTP adapters, [github.com/ztnlabs/ztn/grpcztn] and
// [github.com/ztnlabs/ztn/httpztn], serve and call over a Service.
//
// # A complete program
//
//	package main
//
//	import (
//		"context"
//		"fmt"
//		"io"
//		"log"
//
//		"github.com/ztnlabs/ztn/authz"
//		"github.com/ztnlabs/ztn/ztnet"
//	)
//
//	func main() {
//		ctx := context.Background()
//		mesh, err := ztnet.NewDev()
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer mesh.Close()
//		err = mesh.Policy().Set(authz.ConfigEntry{Name: "fortune",
//			Sources: []authz.SourceIntention{{Name: "web", Action: authz.ActionAllow}}})
//		if err != nil {
//			log.Fatal(err)
//		}
//
//		fortune, err := mesh.Service(ctx, "fortune")
//		if err != nil {
//			log.Fatal(err)
//		}
//		l, err := fortune.Listen(ctx, "tcp", "127.0.0.1:0")
//		if err != nil {
//			log.Fatal(err)
//		}
//		go func() {
//			for {
//				c, err := l.Accept()
//				if err != nil {
//					return
//				}
//				peer, _ := ztnet.Peer(c)
//				fmt.Fprintf(c, "Trust, but verify, %s.\n", peer.Name)
//				c.Close()
//			}
//		}()
//
//		web, err := mesh.Service(ctx, "web")
//		if err != nil {
//			log.Fatal(err)
//		}
//		c, err := web.Dial(ctx, "fortune")
//		if err != nil {
//			log.Fatal(err) // a refusal says why: "... denied: no intention matches"
//		}
//		defer c.Close()
//		msg, _ := io.ReadAll(c)
//		fmt.Print(string(msg)) // Trust, but verify, web.
//	}
//
// # What a listener guarantees
//
// Accept returns only connections that completed a TLS 1.3 handshake with a
// client certificate that chains to the current trust bundle, carries
// exactly one URI SAN naming a service in the local (or a federated) trust
// domain, and is allowed by the policy. Identity and authorization are
// checked in tls.Config.VerifyConnection or right after the handshake, so
// they hold for resumed sessions too; handshakes run off the Accept path
// under a deadline ([WithHandshakeTimeout], [WithMaxConcurrentHandshakes]).
// When the policy changes, open connections whose pair is now denied are
// closed.
//
// Listeners serve TLS clients that are not ztn too (curl, Consul's
// Connect-native client, go-spiffe), whatever ALPN protocols they offer
// besides ztn's: they are verified and authorized inside the handshake and
// get no verdict. Clients that speak another protocol (plaintext, TLS below
// 1.3, a ztn protocol the listener does not serve) are refused and logged
// with what they offered. [WithProtocols] adds application protocols, such
// as "h2", negotiated by ALPN.
//
// # What Dial guarantees
//
// The server proved it is the service asked for, in the local trust domain
// (or the federated one named with [WithRemoteService] or
// [WithServerTrustDomain]), and between two ztn ends (ALPN "ztn/1") the
// server's authorization verdict arrives before Dial returns, so a refusal
// is an error from Dial with the server's reason. A server that is not ztn
// (Consul's native package, go-spiffe, any TLS server with a mesh
// certificate) sends no verdict, so, as with any TLS 1.3 client, its
// refusal shows at the first Read ("remote error: tls: bad certificate").
//
// # Federation
//
// [WithFederatedPeer] accepts clients of another trust domain, whose bundle
// the Source holds, and names them in authorization as services of a peer:
// only intentions whose source names that peer admit them, never those of
// the local service of the same name nor local wildcards. Dial reaches a
// server of a federated trust domain only when told to: per service with
// [WithRemoteService] (which the adapters' clients follow too), or per Dial
// with [WithServerTrustDomain].
//
// # Key exchange and resumption
//
// Full handshakes use Go's default, the hybrid post-quantum X25519MLKEM768.
// Dial resumes TLS sessions by default; that is safe here because every
// resumed connection is re-verified and re-authorized. Resumed handshakes
// add a fresh X25519 exchange to the session's key, which itself comes from
// a hybrid handshake; session tickets are sealed with keys made in process
// and rotated hourly. [WithPostQuantumResumption] keeps the hybrid exchange
// on resumption too; [WithoutResumption] turns resumption off.
//
// # Logs, metrics and traces
//
// A Service logs to [WithLogger]'s logger ([slog.Default] without it), and
// so do what it builds: the certificate rotation of a Service Dev made, the
// access records of the grpcztn and httpztn adapters. As a library should,
// it is quiet by default: each connection's access record (one when it
// closes: peer, decision, bytes, duration) is logged at Debug, each refusal
// at Warn with its reason, so [slog.Default] at its Info level shows only
// refusals. For the full access log, give a logger at Debug:
//
//	debug := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
//	svc, err := ztnet.New(ctx, "web", ztnet.WithLogger(debug), ...)
//	mesh, err := ztnet.NewDev(ztnet.WithLogger(debug)) // every Service of the mesh
//
// Refusals are also counted (ztn.handshakes, ztn.authz.decisions), with
// OpenTelemetry's global meter provider unless [WithMeterProvider] gives
// another, and Dial and Accept are traced ([WithTracerProvider]), their
// spans naming both ends by SPIFFE ID ([AttrSourceID], [AttrDestinationID]).
// [Service.Ready] says whether the Service can serve now (a usable
// certificate, a policy that can decide) or why not: serve it as a
// readiness probe; registered listeners' health checks follow it.
//
// # Options
//
// Each option is a value of the interface named after what takes it:
// [Option] for New and Dev.Service, [DevOption] for NewDev, [ListenOption]
// for Listen, [DialOption] for Dial. Every Option is also a DevOption: given
// to NewDev, it applies to every Service of the mesh.
//
// # Contexts, closing and errors
//
// The ctx given to New, Listen and Dev.Service bounds only their setup,
// never the life of what they return; the ctx given to Dial bounds the
// whole Dial, not the connection it returns. [Service.Close] closes the
// Service's listeners and the connections they accepted; after it, Listen
// and Dial fail with [net.ErrClosed]. [Dev.Close] closes every Service of
// the mesh.
//
// Errors name the package and the operation once: "ztnet: dial fortune:
// ...". A refusal by the server's policy is a [*DeniedError], a peer whose
// identity is not acceptable a [*RejectedError], a service without
// instances [ErrNoInstance]; errors.As and errors.Is find them through
// Dial's error.
//
// # From the environment
//
// Package [github.com/ztnlabs/ztn/ztnet/ztnenv] configures a mesh from
// environment variables — Consul and Vault, or the dev mesh — and has
// package-level Listen and Dial with the arguments of [Service.Listen] and
// [Service.Dial]. It lives apart so that a program that does not use it
// links no Consul or Vault client.
package ztnet
