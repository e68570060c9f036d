// Package httppath is ztn's one request-path normalization. The HTTP
// gateway routes on it, httpztn's Authorize middleware authorizes on it and
// hands it to the handler, and grpcztn authorizes RPC paths with it, so that
// what is routed, what is authorized and what is served are one path.
//
// # Policy
//
// Clean takes a path as it came on the wire (percent-encoded, without the
// query string) and either refuses it or returns its decoded, cleaned form.
// It refuses, rather than repairs, every spelling that servers, proxies and
// frameworks are known to read differently:
//
//   - a path that does not start with "/" (the empty path counts as "/");
//   - an invalid percent-encoding ("%zz", "%4");
//   - a dot segment, "." or "..", raw or encoded ("%2e", "%2E%2e", ".%2e"),
//     also when followed by ";parameters" ("..;x", "..;"), which Servlet
//     containers strip before resolving dots;
//   - an encoded slash ("%2f", "%2F"), which the gateway would see as one
//     segment and a back end that decodes first as two;
//   - a backslash, raw or encoded ("%5c"), a path separator on Windows and
//     to some frameworks;
//   - a control character (NUL, CR, LF, ... DEL), raw or encoded ("%00");
//   - a percent-encoding that survives decoding ("%252e" decodes to "%2e"):
//     a server that decodes twice would see another path.
//
// Otherwise the path is decoded once and repeated slashes are merged ("//a"
// is "/a"); a trailing slash is kept ("/a/" stays "/a/"), ";" is an ordinary
// character (Go's net/http gives it no meaning), and percent-encodings are
// decoded whatever the case of their hex digits.
//
// The result is the decoded path (as net/http's URL.Path holds it). Sent on
// as a URL with that Path and an empty RawPath (what the gateway forwards),
// it cleans to itself, and it stays below every segment prefix it was routed
// under: nothing appended to "/api/" cleans to a path outside "/api/".
//
// A refused path is a client error: the gateway and httpztn answer 400 Bad
// Request, grpcztn refuses the RPC.
package httppath

import "strings"

// Error is why Clean refused a path.
type Error struct {
	Path   string // the path as given
	Reason string // "dot segment", "encoded slash", ...
}

func (e *Error) Error() string { return "httppath: " + e.Reason + " in path " + quote(e.Path) }

// Reasons for refusing a path.
const (
	reasonNoSlash      = "no leading slash"
	reasonBadEscape    = "invalid percent-encoding"
	reasonDotSegment   = "dot segment"
	reasonEncodedSlash = "encoded slash"
	reasonBackslash    = "backslash"
	reasonControl      = "control character"
	reasonDoubleEscape = "double percent-encoding"
	reasonNotClean     = "not in clean form"
)

// Clean returns the decoded, cleaned form of escaped, the path of a request
// as sent (percent-encoded, no query string), or an *Error saying why the
// path is refused (see the package doc for the policy). A path that needs no
// change is returned as it is, without allocating.
func Clean(escaped string) (string, error) {
	if escaped == "" {
		return "/", nil
	}
	if escaped[0] != '/' {
		return "", refuse(escaped, reasonNoSlash)
	}
	if reason, ok := scanClean(escaped); ok {
		return escaped, nil
	} else if reason != "" {
		return "", refuse(escaped, reason)
	}
	return decode(escaped)
}

// CheckClean returns nil when p is already in the form Clean gives (Clean
// would return it unchanged), and an *Error otherwise. It is for paths that
// are used as they are, without decoding: gRPC's method paths.
func CheckClean(p string) error {
	c, err := Clean(p)
	if err != nil {
		return err
	}
	if c != p {
		return refuse(p, reasonNotClean)
	}
	return nil
}

// scanClean checks a path without decoding it: ok when it is clean as it is
// (no '%', no repeated slash), a reason when it must be refused whatever
// its escapes decode to, neither when it must be decoded.
func scanClean(p string) (reason string, ok bool) {
	ok = true
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			ok = false
		case c == '\\':
			return reasonBackslash, false
		case c < 0x20 || c == 0x7f:
			return reasonControl, false
		case c == '/' && i+1 < len(p) && p[i+1] == '/':
			ok = false
		case c == '/' && isDotSegment(p[i+1:]):
			return reasonDotSegment, false
		}
	}
	return "", ok
}

// isDotSegment reports whether the segment at the start of rest (up to the
// next '/') is "." or "..", with or without ";parameters".
func isDotSegment[S ~string | ~[]byte](rest S) bool {
	n := 0
	for n < len(rest) && rest[n] == '.' {
		n++
	}
	return (n == 1 || n == 2) && (n == len(rest) || rest[n] == '/' || rest[n] == ';')
}

// decode percent-decodes p, refusing what the policy refuses, and merges
// repeated slashes.
func decode(p string) (string, error) {
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", refuse(p, reasonBadEscape)
			}
			c = unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			if c == '/' {
				return "", refuse(p, reasonEncodedSlash)
			}
		}
		switch {
		case c == '\\':
			return "", refuse(p, reasonBackslash)
		case c < 0x20 || c == 0x7f:
			return "", refuse(p, reasonControl)
		case c == '/' && len(b) > 0 && b[len(b)-1] == '/':
			continue // merge repeated slashes
		}
		b = append(b, c)
	}
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]):
			return "", refuse(p, reasonDoubleEscape)
		case b[i] == '/' && isDotSegment(b[i+1:]):
			return "", refuse(p, reasonDotSegment)
		}
	}
	return string(b), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func refuse(p, reason string) error { return &Error{Path: p, Reason: reason} }

// quote quotes p for an error message, cut to a bounded length: paths come
// from strangers.
func quote(p string) string {
	const max = 200
	if len(p) > max {
		p = p[:max] + "..."
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c >= 0x80 {
			const hexdigits = "0123456789ABCDEF"
			b.WriteString(`\x`)
			b.WriteByte(hexdigits[c>>4])
			b.WriteByte(hexdigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}
