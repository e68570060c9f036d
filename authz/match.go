package authz

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
)

// rule is a compiled intention: the Intention plus its permission matchers
// and what decision reasons print. Rules are immutable once compiled.
type rule struct {
	Intention
	perms []permMatcher // one per Permission, in order
	label string        // "web → api"
	// reasons holds what Decision.Reason returns for this rule, once asked.
	reasons atomic.Pointer[ruleReasons]
}

// permMatcher is a compiled Permission.
type permMatcher struct {
	allow   bool
	path    pathMatcher
	headers []headerMatcher
	methods []string // upper case
	summary string   // for reasons, e.g. "GET /admin"
}

type pathOp uint8

const (
	pathAny pathOp = iota
	pathExact
	pathPrefix
	pathRegex
)

type pathMatcher struct {
	op    pathOp
	value string
	re    *regexp.Regexp // anchored at both ends
}

type headerOp uint8

const (
	headerPresent headerOp = iota
	headerExact
	headerPrefix
	headerSuffix
	headerContains
	headerRegex
)

const (
	pseudoNone uint8 = iota
	pseudoMethod
	pseudoPath
)

type headerMatcher struct {
	key        string // canonical (net/http) form
	lowerKey   string // lower-case (HTTP/2, gRPC metadata) form
	pseudo     uint8
	op         headerOp
	value      string         // lower-cased when ignoreCase
	re         *regexp.Regexp // anchored at both ends
	invert     bool
	ignoreCase bool
}

// matches reports whether every condition of the permission holds for req.
func (m *permMatcher) matches(req *HTTPRequest) bool {
	if len(m.methods) > 0 && !methodMatches(m.methods, req.Method) {
		return false
	}
	if !m.path.matches(req.Path) {
		return false
	}
	for i := range m.headers {
		if !m.headers[i].matches(req) {
			return false
		}
	}
	return true
}

// methodMatches reports whether method is one of methods (upper case),
// compared without case, with GET covering HEAD: net/http answers HEAD with
// the GET handler, and a handler that does not check the method serves
// "get" as it serves "GET", so a deny naming GET must refuse both.
func methodMatches(methods []string, method string) bool {
	for _, m := range methods {
		if method == m || equalFoldUpper(method, m) {
			return true
		}
	}
	return equalFoldUpper(method, http.MethodHead) && slices.Contains(methods, http.MethodGet)
}

func (m *pathMatcher) matches(path string) bool {
	if m.op == pathAny {
		return true
	}
	if !strings.HasPrefix(path, "/") {
		return false
	}
	switch m.op {
	case pathExact:
		return path == m.value
	case pathPrefix:
		return strings.HasPrefix(path, m.value)
	default:
		return m.re.MatchString(path)
	}
}

// matches evaluates a header condition the way Envoy's HeaderUtility does:
// a missing header matches nothing but an inverted Present, and the
// outcome of a present one is inverted by Invert.
func (m *headerMatcher) matches(req *HTTPRequest) bool {
	v, ok := m.lookup(req)
	if !ok {
		return m.op == headerPresent && m.invert
	}
	var match bool
	switch m.op {
	case headerPresent:
		match = true
	case headerExact:
		match = v == m.value || m.ignoreCase && equalFoldASCII(v, m.value)
	case headerPrefix:
		match = strings.HasPrefix(v, m.value) || m.ignoreCase && len(v) >= len(m.value) && equalFoldASCII(v[:len(m.value)], m.value)
	case headerSuffix:
		match = strings.HasSuffix(v, m.value) || m.ignoreCase && len(v) >= len(m.value) && equalFoldASCII(v[len(v)-len(m.value):], m.value)
	case headerContains:
		match = strings.Contains(v, m.value) || m.ignoreCase && containsFoldASCII(v, m.value)
	case headerRegex:
		match = m.re.MatchString(v)
	}
	return match != m.invert
}

// lookup returns the header's value, its values joined by "," when it has
// several (as Envoy matches them), and whether it is present.
func (m *headerMatcher) lookup(req *HTTPRequest) (string, bool) {
	switch m.pseudo {
	case pseudoMethod:
		return upperASCII(req.Method), true
	case pseudoPath:
		return req.Path, true
	}
	var vs []string
	if req.HeaderSource != nil {
		vs = req.HeaderSource.Values(m.lowerKey)
	} else {
		vs = req.Header[m.key]
		if len(vs) == 0 && m.lowerKey != m.key {
			vs = req.Header[m.lowerKey]
		}
	}
	switch len(vs) {
	case 0:
		return "", false
	case 1:
		return vs[0], true
	default:
		return strings.Join(vs, ","), true
	}
}

// lowerASCII lower-cases ASCII letters only, as Envoy's ignore_case does.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// upperASCII upper-cases ASCII letters only: methods are ASCII tokens.
func upperASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'a' <= b[j] && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// equalFoldUpper reports whether s equals upper (already upper case) with
// ASCII letters compared without case.
func equalFoldUpper(s, upper string) bool {
	if len(s) != len(upper) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFoldASCII reports whether s equals lower (already lower case) with
// ASCII letters compared without case.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lowerByte(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

// containsFoldASCII reports whether lower (already lower case) occurs in s
// with ASCII letters compared without case.
func containsFoldASCII(s, lower string) bool {
	for i := 0; i+len(lower) <= len(s); i++ {
		if equalFoldASCII(s[i:i+len(lower)], lower) {
			return true
		}
	}
	return false
}
