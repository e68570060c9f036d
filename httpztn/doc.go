// Package httpztn carries net/http over ztn: a server on a ztn listener with
// every request authorized against L7 intentions, a client whose URL host is
// a service name, and an ingress gateway that brings public traffic into the
// mesh.
//
// A complete program, on ztnet's embedded development mesh (with a real
// mesh, the Services come from [ztnet.New] instead), where web calls api:
//
//	package main
//
//	import (
//		"context"
//		"fmt"
//		"io"
//		"log"
//		"net/http"
//
//		"github.com/ztnlabs/ztn/authz"
//		"github.com/ztnlabs/ztn/httpztn"
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
//		entries, err := authz.ParseConfigEntries([]byte(`[{"Kind": "service-intentions", "Name": "api",
//			"Sources": [{"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"Methods": ["GET"]}}]}]}]`))
//		if err != nil {
//			log.Fatal(err)
//		}
//		if err := mesh.Policy().Set(entries...); err != nil {
//			log.Fatal(err)
//		}
//		api, err := mesh.Service(ctx, "api")
//		if err != nil {
//			log.Fatal(err)
//		}
//		web, err := mesh.Service(ctx, "web")
//		if err != nil {
//			log.Fatal(err)
//		}
//
//		// The server: api answers whoever its intentions let in.
//		l, err := httpztn.Listen(ctx, api, "tcp", "127.0.0.1:0")
//		if err != nil {
//			log.Fatal(err)
//		}
//		srv := httpztn.NewServer(api, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//			caller, _ := httpztn.Peer(r)
//			fmt.Fprintf(w, "hello %s\n", caller.Name)
//		}))
//		go srv.Serve(l)
//		defer srv.Close()
//
//		// The client: the URL's host is the service's name.
//		resp, err := httpztn.NewClient(web).Get("http://api/hello")
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer resp.Body.Close()
//		body, _ := io.ReadAll(resp.Body)
//		fmt.Print(string(body)) // hello web
//	}
//
// # Server
//
// [Listen] opens a ztn listener that negotiates HTTP/2 or HTTP/1.1 by ALPN;
// [NewServer] returns an *http.Server that authorizes every request before
// the handler sees it, with ReadHeaderTimeout (10 s) and IdleTimeout
// (2 min) set, so that admitted connections that send nothing are closed;
// its fields can be changed before it serves. [Serve] does both for a
// listener from Listen. Handlers read the caller with [Peer].
//
// # Authorization
//
// Each request (path without the query string, method, headers) is judged
// as Consul's Envoy does: permissions in order, the first match decides,
// and when an L7 intention matches but none of its permissions does, the
// default decides. A refused request gets 403 with the reason in the body.
// Where ztn differs from Envoy, it is stricter:
//
//   - Paths: one function (shared by the server, the [Gateway] and grpcztn)
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
// An intention's [authz.HTTPMatch].PathPrefix is a plain string prefix, as
// in Consul ("/api" matches "/apis"); a gateway [Route].PathPrefix matches
// whole path segments.
//
// # Client
//
// [NewClient] returns an *http.Client, and [NewTransport] the
// http.RoundTripper under it (for an httputil.ReverseProxy, say), that
// send each request to an instance of the service its URL names, over
// HTTP/2 unless [WithHTTP1]. The client follows redirects within a service
// only: a redirect to another service, or out of the mesh, is refused
// ([WithCrossServiceRedirects] allows other services), since following it
// would carry the caller's identity where the caller did not send it.
//
// # Retries
//
// A connection that cannot be made is tried on the next instance. A request
// that was sent and failed is sent again only under a [RetryPolicy], given
// with [WithRetry] or as a gateway [Route].Retry, and only when it is
// idempotent and its body can be sent again; each retry goes to another
// instance:
//
//	c := httpztn.NewClient(ui, httpztn.WithRetry(httpztn.RetryPolicy{
//		MaxRetries:    2,               // after a 5xx, a reset, a timeout
//		PerTryTimeout: 2 * time.Second, // until the response header
//		BufferBody:    64 << 10,        // a body cut short is retried too
//	}))
//
// # Gateway
//
// A [Gateway] is the http.Handler of a public server (TLS with an ordinary
// web certificate, or plain HTTP in development) that sends each request to
// the mesh service of the first matching [Route], under the gateway's own
// identity:
//
//	gw, err := httpztn.NewGateway(gatewaySvc,
//		httpztn.Route{Host: "shop.example.com", PathPrefix: "/api", Service: "api"},
//		httpztn.Route{Host: "shop.example.com", Service: "web"},
//	)
//	public := &http.Server{Addr: ":443", Handler: gw,
//		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
//	go public.ListenAndServeTLS("server.crt", "server.key")
//
// The gateway routes on the cleaned path and forwards that path; its
// refusals tell the public only a status and a request id, and the details
// go to its access record under that id.
//
// # Logs
//
// The server writes one access record per request ("ztn request": source,
// destination, method, path, decision, reason, status, bytes, duration) and
// the gateway one per public request ("ztn gateway request") on the
// Service's logger: allowed requests at Debug, refusals at Warn. A library
// stays quiet by default, so the default logger (Info) shows refusals
// only; for the full access log give the Service a logger at Debug:
//
//	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
//	svc, err := ztnet.New(ctx, "api", ztnet.WithLogger(logger), ...)
//
// Retries are logged at Debug too ("ztn http retry"), and refused
// redirects at Warn.
//
// # OpenTelemetry
//
// [NewServer], [NewTransport], [NewClient] and [NewGateway] install
// otelhttp with the Service's tracer and meter providers, unless both are
// OpenTelemetry's no-op ones: then nothing is installed and telemetry costs
// nothing. Retries are counted in ztn.http.retries. The trace context
// crosses services in the W3C traceparent header, whatever OpenTelemetry's
// global propagator is (baggage does not cross), so a request through
// several services is one trace; the client and server spans of a request
// carry both ends' SPIFFE IDs (ztnet.AttrSourceID, ztnet.AttrDestinationID;
// the destination as the connection verified it). The gateway does not
// continue a trace context that comes from outside the mesh (a caller could
// pick the trace ID): its span starts a trace of its own, linked to the
// caller's.
//
// # Plain TLS clients
//
// Plain TLS clients such as curl can call an httpztn server with a client
// certificate that chains to the mesh's trust bundle; they are authorized in
// the TLS handshake.
//
// Use the constructors ([Listen], [NewServer], [NewTransport], [NewClient],
// [NewGateway]): a zero Transport fails each request with an error, a zero
// Gateway answers 500.
package httpztn
