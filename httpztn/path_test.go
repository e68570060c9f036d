package httpztn

import "testing"

// isCleanPath, the allocation-free check Authorize makes on every request,
// agrees with cleanPath on every path made of a few segments.
func TestIsCleanPath(t *testing.T) {
	parts := []string{"", "/", ".", "..", "a", "b.", ".c", "..d", "%2e"}
	var paths []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		paths = append(paths, prefix)
		if n == 0 {
			return
		}
		for _, p := range parts {
			gen(prefix+p, n-1)
		}
	}
	gen("", 5)
	clean := 0
	for _, p := range paths {
		got, want := isCleanPath(p), cleanPath(p) == p
		if got != want {
			t.Errorf("isCleanPath(%q) = %v, but cleanPath gives %q", p, got, cleanPath(p))
		}
		if got {
			clean++
		}
	}
	if clean < 100 || len(paths)-clean < 100 {
		t.Fatalf("%d clean paths of %d: the generator misses a kind", clean, len(paths))
	}
}
