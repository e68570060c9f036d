package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestEgressClient: the bot's way out reaches the weather API's host and
// port only, follows no redirect, and speaks TLS 1.3 verified against the
// roots given.
func TestEgressClient(t *testing.T) {
	newTLS := func(h http.Handler) *httptest.Server {
		s := httptest.NewUnstartedServer(h)
		s.TLS = &tls.Config{MaxVersion: tls.VersionTLS13}
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	other := newTLS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("other")) }))
	api := newTLS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
			return
		}
		w.Write([]byte("api"))
	}))
	roots := x509.NewCertPool()
	roots.AddCert(api.Certificate())
	roots.AddCert(other.Certificate())
	c, err := newEgressClient(api.URL, roots)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Get(api.URL + "/data")
	if err != nil {
		t.Fatalf("the API itself: %v", err)
	}
	res.Body.Close()
	if res.TLS == nil || res.TLS.Version != tls.VersionTLS13 {
		t.Errorf("TLS %v, want 1.3", res.TLS)
	}
	for _, tc := range []struct{ url, want string }{
		{other.URL + "/", "is not the weather API"},
		{api.URL + "/redirect", "redirects are not followed"},
	} {
		if res, err := c.Get(tc.url); err == nil || !strings.Contains(err.Error(), tc.want) {
			if err == nil {
				res.Body.Close()
			}
			t.Errorf("GET %s: %v, want an error saying %q", tc.url, err, tc.want)
		}
	}
	// An API whose certificate does not chain to the roots is refused.
	strict, err := newEgressClient(api.URL, x509.NewCertPool())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.Get(api.URL + "/data"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an unknown CA: %v, want a certificate error", err)
	}
	for _, bad := range []string{"http://api.example.com", "https://", "::"} {
		if _, err := newEgressClient(bad, nil); err == nil {
			t.Errorf("newEgressClient(%q) accepted", bad)
		}
	}
}
