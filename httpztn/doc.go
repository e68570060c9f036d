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
// Authorize judges each request (path without the query string, method,
// headers) as Consul's Envoy does: permissions in order, the first match
// decides, and when an L7 intention matches but none of its permissions
// does, the default decides. A refused request gets 403 with the reason in
// the body. Handlers read the caller with PeerID(r).
//
// Client:
//
//	c := httpztn.NewClient(svc) // *http.Client, HTTP/2 over ztn by default
//	resp, err := c.Get("http://yelb-appserver/api/getvotes")
//
// Gateway (north-south):
//
//	gw, err := httpztn.NewGateway(gatewaySvc,
//		httpztn.Route{Host: "shop.example.com", PathPrefix: "/api", Service: "api"},
//		httpztn.Route{Host: "shop.example.com", Service: "web"},
//	)
//	public := &http.Server{Addr: ":443", Handler: gw}
//	go public.ListenAndServeTLS("server.crt", "server.key") // an ordinary web certificate
//
// OpenTelemetry: NewServer, NewClient and NewGateway install otelhttp with
// the Service's tracer and meter providers, unless both are OpenTelemetry's
// no-op ones: then nothing is installed and telemetry costs nothing.
//
// Plain TLS clients such as curl can call an httpztn server with a client
// certificate that chains to the mesh's trust bundle; they are authorized in
// the TLS handshake.
package httpztn
