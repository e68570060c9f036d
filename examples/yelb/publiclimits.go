package main

import (
	"log/slog"
	"net/http"
)

// The gateway's public side, where anyone can connect, refuses oversized
// request headers at two bounds.
const (
	// maxHeaderBytes is the most net/http reads of a request's line and
	// headers (plus its 4 KiB slack); beyond, it answers 431 itself, and
	// logs nothing.
	maxHeaderBytes = 64 << 10
	// maxHeader is the most the gateway passes on to the mesh; beyond, it
	// answers 431 and logs why (see limitHeaders).
	maxHeader = 32 << 10
)

// limitHeaders refuses a request whose line and headers exceed maxHeader
// bytes with 431, and logs the refusal at Warn with the client, the sizes
// and the start of the path; other requests go to h.
func limitHeaders(h http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := headerBytes(r); n > maxHeader {
			path := r.URL.Path
			if len(path) > 200 {
				path = path[:200] + "..."
			}
			logger.Warn("yelb: gateway: request refused: headers too large", "client", r.RemoteAddr,
				"method", r.Method, "path", path, "header_bytes", n, "limit", maxHeader)
			w.Header().Set("Connection", "close")
			http.Error(w, "request header fields too large", http.StatusRequestHeaderFieldsTooLarge)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// headerBytes is about what r's request line and headers took on the wire.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + len("  \r\nHost: \r\n\r\n") + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(": \r\n") + len(v)
		}
	}
	return n
}
