package httpztn

import "net/http"

// Instrumented reports whether t sends its requests through otelhttp's
// transport.
func Instrumented(t *Transport) bool { return t.rt != http.RoundTripper(t.core) }
