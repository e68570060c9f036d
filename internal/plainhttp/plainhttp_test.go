package plainhttp

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		addr         string
		tlsByDefault bool
		allow        bool
		ok           bool
	}{
		{"https://vault.example.com:8200", false, false, true},
		{"http://127.0.0.1:8200", false, false, true},
		{"http://127.9.9.9:8200", false, false, true},
		{"http://localhost:8200", false, false, true},
		{"http://LOCALHOST", false, false, true},
		{"http://[::1]:8200", false, false, true},
		{"http://vault.example.com:8200", false, false, false},
		{"HTTP://10.0.0.5:8200", false, false, false},
		{"http://127.0.0.1.evil.example:8200", false, false, false},
		{"http://localhost.evil.example", false, false, false},
		{"http://vault.example.com:8200", false, true, true},
		{"10.0.0.5:8500", false, false, false}, // Consul: bare address is plain HTTP
		{"10.0.0.5:8500", true, false, true},   // ... unless CONSUL_HTTP_SSL
		{"127.0.0.1:8500", false, false, true},
		{"unix:///var/run/consul.sock", false, false, true},
		{"ftp://vault.example.com", false, false, false},
		{"http://%zz", false, false, false},
	} {
		err := Check(tc.addr, tc.tlsByDefault, tc.allow, "VAULT_ADDR", "set X=1")
		if (err == nil) != tc.ok {
			t.Errorf("Check(%q, tls %v, allow %v) = %v, want ok %v", tc.addr, tc.tlsByDefault, tc.allow, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "VAULT_ADDR") {
			t.Errorf("error %q does not name the setting", err)
		}
	}
}

func FuzzCheck(f *testing.F) {
	f.Add("http://127.0.0.1:8200")
	f.Add("http://[::1")
	f.Fuzz(func(t *testing.T, addr string) {
		if err := Check(addr, false, false, "A", "B"); err == nil && strings.HasPrefix(strings.ToLower(addr), "http://") {
			host := addr[len("http://"):]
			if i := strings.IndexAny(host, "/?#"); i >= 0 {
				host = host[:i]
			}
			if !Loopback(host) && !strings.Contains(host, "@") {
				t.Fatalf("Check accepted plain HTTP to %q", addr)
			}
		}
	})
}
