package httppath

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// hostile is the table of hostile spellings: each either is refused with
// the given reason or cleans to the given path.
var hostile = []struct {
	in, want, reason string
}{
	// Clean paths come back as they are.
	{"/", "/", ""},
	{"/api/items", "/api/items", ""},
	{"/api/items/", "/api/items/", ""},
	{"/.well-known/x", "/.well-known/x", ""},
	{"/a/...", "/a/...", ""},
	{"/a/..b/c.", "/a/..b/c.", ""},
	{"/a;b=1/c", "/a;b=1/c", ""},
	{"", "/", ""},
	// Dot segments, raw and encoded, in any case, with parameters.
	{"/api/../admin", "", "dot segment"},
	{"/api/./admin", "", "dot segment"},
	{"/api/..", "", "dot segment"},
	{"/api/.", "", "dot segment"},
	{"/..", "", "dot segment"},
	{"/api/%2e%2e/admin", "", "dot segment"},
	{"/api/%2E%2E/admin", "", "dot segment"},
	{"/api/%2e%2E/admin", "", "dot segment"},
	{"/api/.%2e/admin", "", "dot segment"},
	{"/api/%2e./admin", "", "dot segment"},
	{"/api/%2e/admin", "", "dot segment"},
	{"/api/..;/admin", "", "dot segment"},
	{"/api/..;x=1/admin", "", "dot segment"},
	{"/api/%2e%2e;/admin", "", "dot segment"},
	{"/api/..%3b/admin", "", "dot segment"},
	{"/api//../admin", "", "dot segment"},
	// Encoded slashes.
	{"/api/..%2fadmin", "", "encoded slash"},
	{"/api/..%2Fadmin", "", "encoded slash"},
	{"/api%2f..%2fadmin", "", "encoded slash"},
	{"/api/a%2Fb", "", "encoded slash"},
	// Backslashes.
	{`/api/..\admin`, "", "backslash"},
	{`/api\admin`, "", "backslash"},
	{"/api/..%5cadmin", "", "backslash"},
	{"/api/%5C", "", "backslash"},
	// Control characters.
	{"/api/%00/admin", "", "control character"},
	{"/api/x%00", "", "control character"},
	{"/api/\x00", "", "control character"},
	{"/api/%0d%0aX: y", "", "control character"},
	{"/api/%7f", "", "control character"},
	// Double encoding.
	{"/api/%252e%252e/admin", "", "double percent-encoding"},
	{"/api/%252E", "", "double percent-encoding"},
	{"/api/%252f", "", "double percent-encoding"},
	{"/api/%25%32%65", "", "double percent-encoding"},
	// Invalid encodings and forms.
	{"/api/%zz", "", "invalid percent-encoding"},
	{"/api/%2", "", "invalid percent-encoding"},
	{"/api/%", "", "invalid percent-encoding"},
	{"api/x", "", "no leading slash"},
	{"*", "", "no leading slash"},
	// Repeated slashes merge; other encodings decode, whatever their case.
	{"//admin", "/admin", ""},
	{"/api//x///y//", "/api/x/y/", ""},
	{"/%61pi/%69tems", "/api/items", ""},
	{"/%41%42", "/AB", ""},
	{"/a%20b", "/a b", ""},
	{"/a%3fb", "/a?b", ""},
	{"/a%3Bb", "/a;b", ""},
	{"/100%25", "/100%", ""},
	{"/100%25zz", "/100%zz", ""},
	{"/caf%C3%A9", "/café", ""},
}

func TestCleanHostilePaths(t *testing.T) {
	for _, tc := range hostile {
		got, err := Clean(tc.in)
		if tc.reason != "" {
			var pe *Error
			if !errors.As(err, &pe) || pe.Reason != tc.reason || pe.Path != tc.in {
				t.Errorf("Clean(%q) = %q, %v; want refused for %s", tc.in, got, err, tc.reason)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Clean(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			continue
		}
		checkInvariants(t, tc.in, got)
	}
}

// A clean path costs a scan and no allocation.
func TestCleanAllocatesNothingWhenClean(t *testing.T) {
	for _, p := range []string{"/api/items/42", "/grpc.health.v1.Health/Check", "/a;b/.c/"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = Clean(p) }); n != 0 {
			t.Errorf("Clean(%q): %v allocations", p, n)
		}
	}
}

func TestErrorMessageIsBounded(t *testing.T) {
	long := "/" + strings.Repeat("a", 5000) + "/%00\n\"x"
	_, err := Clean(long)
	if err == nil {
		t.Fatal("not refused")
	}
	msg := err.Error()
	if len(msg) > 300 || strings.ContainsAny(msg, "\x00\n") || !strings.HasPrefix(msg, "httppath: control character in path") {
		t.Fatalf("error message %d bytes: %q", len(msg), msg)
	}
}

// checkInvariants checks what every path Clean accepts must satisfy.
func checkInvariants(t *testing.T, in, out string) {
	t.Helper()
	if out == "" || out[0] != '/' {
		t.Fatalf("Clean(%q) = %q: not absolute", in, out)
	}
	for i := 0; i < len(out); i++ {
		c := out[i]
		switch {
		case c == '\\' || c < 0x20 || c == 0x7f:
			t.Fatalf("Clean(%q) = %q: byte %#x", in, out, c)
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			t.Fatalf("Clean(%q) = %q: repeated slash", in, out)
		case c == '/' && isDotSegment(out[i+1:]):
			t.Fatalf("Clean(%q) = %q: dot segment", in, out)
		case c == '%' && i+2 < len(out) && isHex(out[i+1]) && isHex(out[i+2]):
			t.Fatalf("Clean(%q) = %q: a percent-encoding survived", in, out)
		}
	}
	// What the gateway forwards (URL.Path = out, no RawPath), as the back
	// end parses and cleans it, is out again.
	wire := (&url.URL{Path: out}).EscapedPath()
	u, err := url.ParseRequestURI(wire)
	if err != nil || u.Path != out || u.EscapedPath() != wire {
		t.Fatalf("Clean(%q) = %q, sent as %q, parsed as %+v, %v", in, out, wire, u, err)
	}
	if again, err := Clean(wire); err != nil || again != out {
		t.Fatalf("Clean(%q) = %q, sent as %q, cleans to %q, %v: not idempotent", in, out, wire, again, err)
	}
}

func FuzzClean(f *testing.F) {
	for _, tc := range hostile {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if out, err := Clean(in); err == nil {
			checkInvariants(t, in, out)
		}
		// Nothing appended to a prefix climbs out of it.
		for _, prefix := range []string{"/api/", "/api/v1/"} {
			out, err := Clean(prefix + in)
			if err != nil {
				continue
			}
			checkInvariants(t, prefix+in, out)
			if !strings.HasPrefix(out, prefix) {
				t.Fatalf("Clean(%q) = %q escapes %q", prefix+in, out, prefix)
			}
		}
	})
}

func TestCheckClean(t *testing.T) {
	for _, tc := range []struct {
		in, reason string
	}{
		{"/grpc.health.v1.Health/Check", ""},
		{"/a/b/", ""},
		{"/x/../pkg.S/M", "dot segment"},
		{"/pkg.S//M", "not in clean form"},
		{"/pkg.S/M%41", "not in clean form"},
		{"", "not in clean form"},
		{"pkg.S/M", "no leading slash"},
	} {
		err := CheckClean(tc.in)
		var pe *Error
		if tc.reason == "" && err != nil || tc.reason != "" && (!errors.As(err, &pe) || pe.Reason != tc.reason) {
			t.Errorf("CheckClean(%q) = %v, want reason %q", tc.in, err, tc.reason)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = CheckClean("/grpc.health.v1.Health/Check") }); n != 0 {
		t.Errorf("CheckClean of a clean path: %v allocations", n)
	}
}
