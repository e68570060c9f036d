// Package certs provides workload identities: X.509-SVIDs and the trust
// bundles to verify peers with, kept fresh in the background.
//
// A [Source] (go-spiffe's x509svid.Source and x509bundle.Source, plus
// Close) is what the rest of ztn consumes; go-spiffe's tlsconfig helpers
// accept one directly.
//
// # Sources
//
// This package holds the sources that need no external service, and the
// machinery the others are built on:
//
//   - [NewDevCA]: an in-memory CA for development and tests; [DevCA.Source]
//     gives each service a [Rotator] of its SVIDs.
//   - [NewFiles]: PEM files written by Vault Agent or cert-manager,
//     reloaded when they change.
//   - [NewStatic]: an SVID and bundles the program already holds, never
//     renewed.
//   - [NewRotator]: the Source built on an [Issuer], the one-method
//     interface every certificate authority plugs into.
//
// Each backend that talks to an external service is a package of its own,
// so that a program links only the client library of the backend it
// imports (this package links none of them):
//
//   - certs/vault: Vault PKI (the main one). The key is generated in the
//     process and never leaves memory; Token, AppRole, Kubernetes and JWT
//     logins; vault.Bootstrap sets up a mount with one role per service,
//     vault.RotateCA rotates its CA.
//   - certs/consulca: the Consul Connect CA (the agent generates the key).
//   - certs/workloadapi: the SPIFFE Workload API (SPIRE), through go-spiffe.
//
// # Rotation
//
// A [Rotator] keeps an Issuer's SVID fresh:
//
//   - the first SVID is issued synchronously by NewRotator;
//   - each SVID is renewed at a random moment between 60% and 90% of its
//     lifetime, failures are retried with jittered exponential backoff, and
//     an expired SVID is never handed out (fail closed);
//   - the trust bundle is the union of the roots the issuer reports; a root
//     the issuer stops reporting stays trusted until every leaf seen issued
//     under it has expired, so a CA rotation breaks no connection;
//   - issuers whose roots change between issuances implement
//     [BundleWatcher]; the Rotator then follows their reports and re-issues
//     within a random delay after a root change ([WithRootChangeWindow]);
//   - Changed ([Watcher]) wakes watchers on each rotation and bundle change.
//
// Rotation only changes what the next TLS handshake uses; established
// connections are untouched. The [Option] values configure a Rotator and
// every source built on one, including the backends'.
//
// # Observability
//
// Metrics (OpenTelemetry, [WithMeterProvider]): ztn.certs.rotations, a
// counter of issuances by result (success, failure); ztn.certs.expiry,
// a gauge of the seconds until the current leaf expires, by spiffe_id;
// and, to follow a CA rotation, ztn.certs.roots, the roots trusted by
// spiffe_id and trust_domain, and ztn.certs.leaf_issuer, 1 by spiffe_id
// with the key IDs of the CA that signed the current leaf (issuer_key_id)
// and of the root it chains to (root_key_id). [InspectCA] gives the same
// figures to code.
// Each rotation is logged at info level and each failure at warn level
// ([WithLogger]), with the time left before the SVID expires. Key material
// is never logged.
//
// # Example
//
// A complete program with two services of one DevCA talking mutual TLS:
//
//	td := spiffeid.RequireTrustDomainFromString("example.org")
//	ca, err := certs.NewDevCA(td)
//	if err != nil {
//		log.Fatal(err)
//	}
//	server, err := ca.Source(ctx, "dc1", "api", time.Hour)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer server.Close()
//	client, err := ca.Source(ctx, "dc1", "web", time.Hour)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer client.Close()
//
//	web := spiffeid.RequireFromString("spiffe://example.org/ns/default/dc/dc1/svc/web")
//	api := spiffeid.RequireFromString("spiffe://example.org/ns/default/dc/dc1/svc/api")
//	ln, err := tls.Listen("tcp", "127.0.0.1:0",
//		tlsconfig.MTLSServerConfig(server, server, tlsconfig.AuthorizeID(web)))
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer ln.Close()
//	go func() {
//		conn, err := ln.Accept()
//		if err != nil {
//			return
//		}
//		defer conn.Close()
//		io.Copy(conn, conn) // echo
//	}()
//
//	conn, err := tls.Dial("tcp", ln.Addr().String(),
//		tlsconfig.MTLSClientConfig(client, client, tlsconfig.AuthorizeID(api)))
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer conn.Close()
//
// A production service builds the same Rotator on another Issuer, usually
// through a backend:
//
//	src, err := vault.New(ctx, vault.Config{Service: "web", TrustDomain: td},
//		certs.WithLogger(logger), certs.WithMeterProvider(meterProvider))
package certs
