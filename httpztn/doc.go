// Package httpztn carries net/http over ztn: a server on a ztn listener with
// every request authorized against L7 intentions, a client transport whose
// URL host is a service name, and an ingress gateway that brings public
// traffic into the mesh.
//
// Server (HTTP/1.1 and HTTP/2, chosen by ALPN):
//
//	l, err := httpztn.Listen(ctx, svc, "tcp", ":8443")
//	srv := httpztn.NewServer(svc, mux) // Authorize middleware + otelhttp
//	go srv.Serve(l)
//
// NewServer sets ReadHeaderTimeout (10 s) and IdleTimeout (2 min), so that
// admitted connections that send nothing are closed; the returned
// *http.Server's fields can be changed before it serves.
//
// Authorize judges each request (path without the query string, method,
// headers) as Consul's Envoy does: permissions in order, the first match
// decides, and when an L7 intention matches but none of its permissions
// does, the default decides. A refused request gets 403 with the reason in
// the body. Handlers read the caller with PeerID(r). Where ztn differs from
// Envoy, it is stricter:
//
//   - Paths: one function (shared by Authorize, the Gateway and grpcztn)
//     refuses with 400 any path with a dot segment ("..", "%2e%2e", "..;"),
//     an encoded slash ("%2f"), a backslash, a control character ("%00") or
//     a double percent-encoding ("%252e"), and otherwise decodes the path
//     and merges repeated slashes; the handler sees the path that was
//     authorized.
//   - Methods match without case, and a rule naming GET covers HEAD (which
//     net/http serves with the GET handler); Envoy compares exactly.
//   - Header conditions on "Host" and ":authority" both read the request's
//     authority (Request.Host), as Envoy maps both to :authority.
//
// Client:
//
//	c := httpztn.NewClient(svc) // *http.Client, HTTP/2 over ztn by default
//	resp, err := c.Get("http://yelb-appserver/api/getvotes")
//
// The client follows redirects within a service only: a redirect to
// another service, or out of the mesh, is refused (WithCrossServiceRedirects
// allows other services), since following it would carry the caller's
// identity where the caller did not send it.
//
// Gateway (north-south):
//
//	gw, err := httpztn.NewGateway(gatewaySvc,
//		httpztn.Route{Host: "shop.example.com", PathPrefix: "/api", Service: "api"},
//		httpztn.Route{Host: "shop.example.com", Service: "web"},
//	)
//	public := &http.Server{Addr: ":443", Handler: gw,
//		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
//	go public.ListenAndServeTLS("server.crt", "server.key") // an ordinary web certificate
//
// The gateway routes on the cleaned path and forwards that path; its
// refusals tell the public only a status and a request id, and the details
// go to its access record under that id.
//
// OpenTelemetry: NewServer, NewClient and NewGateway install otelhttp with
// the Service's tracer and meter providers, unless both are OpenTelemetry's
// no-op ones: then nothing is installed and telemetry costs nothing.
//
// Plain TLS clients such as curl can call an httpztn server with a client
// certificate that chains to the mesh's trust bundle; they are authorized in
// the TLS handshake.
//
// Use the constructors (Listen, NewServer, NewTransport, NewClient,
// NewGateway): a zero Transport fails each request with an error, a zero
// Gateway answers 500.
package httpztn
