// Package ztnet makes zero-trust connections: Listen and Dial over mutual
// TLS 1.3 where both ends are SPIFFE identities, certificates rotate on their
// own, and every connection is authorized by intentions before either side
// sees a byte.
//
// A Service ties together an identity source (certs.Source), a policy
// (authz.Authorizer) and a way to find services (discovery.Resolver):
//
//	svc, err := ztnet.New(ctx, "web",
//		ztnet.WithSource(source),      // e.g. a certs.Rotator
//		ztnet.WithAuthorizer(policy),  // e.g. an authz.Policy
//		ztnet.WithResolver(resolver),  // e.g. discovery.Static
//	)
//	l, err := svc.Listen(ctx, "tcp", ":8080") // Accept returns authorized *Conn
//	c, err := svc.Dial(ctx, "api")            // fails in Dial if api refuses us
//	fmt.Println(c.PeerID())                   // spiffe://…/ns/default/dc/dc1/svc/api
//
// What a listener guarantees: Accept returns only connections that completed
// a TLS 1.3 handshake with a client certificate that chains to the current
// trust bundle, carries exactly one URI SAN naming a service in the local (or
// a federated) trust domain, and is allowed by the policy. A client of a
// federated trust domain is authorized as a service of its peer (named after
// its trust domain, see WithFederatedTrustDomains): only intentions whose
// source names that peer admit it, never those of the local service of the
// same name nor local wildcards. Identity and authorization are checked in
// tls.Config.VerifyConnection or right after the handshake, so they hold
// for resumed sessions too; handshakes run off the Accept path under a
// deadline. When the policy changes, open connections whose pair is now
// denied are closed.
//
// What Dial guarantees: the server proved it is the service asked for, in
// the local trust domain (or the federated one named with
// WithServerTrustDomain), and between two ztn ends (ALPN "ztn/1") the
// server's authorization verdict arrives before Dial returns, so a refusal
// is an error from Dial with the server's reason. That holds between two
// ztn ends only: a server that is not ztn (Consul's native package,
// go-spiffe, any TLS server with a mesh certificate) sends no verdict, so,
// as with any TLS 1.3 client, its refusal shows at the first Read ("remote
// error: tls: bad certificate"). Dial resumes TLS sessions by default; that
// is safe here because every resumed connection is re-verified and
// re-authorized.
//
// Listeners serve TLS clients that are not ztn too (curl, Consul's
// Connect-native client, go-spiffe), whatever ALPN protocols they offer
// besides ztn's: they are verified and authorized inside the handshake and
// get no verdict. Clients that speak another protocol (plaintext, TLS below
// 1.3, a ztn protocol the listener does not serve) are refused and logged at
// Warn with what they offered.
//
// Key exchange: full handshakes use Go's default, the hybrid post-quantum
// X25519MLKEM768. Resumed handshakes add a fresh X25519 exchange to the
// session's key, which itself comes from a hybrid handshake; session tickets
// are sealed with keys made in process and rotated hourly.
// WithPostQuantumResumption keeps the hybrid exchange on resumption too.
//
// Refusals are logged (one record with the reason), counted (ztn.handshakes,
// ztn.authz.decisions), and returned as *DeniedError or *RejectedError.
// Each connection logs one access record when it closes. Ready says whether
// the Service can serve now (a usable certificate, a policy that can decide)
// or why not; serve it as a readiness probe. Registered listeners' health
// checks in Consul follow it.
//
// NewDev runs a whole mesh in the process, for development and tests; the
// package-level Listen and Dial use a mesh configured from the environment
// (see NewEnv).
package ztnet
