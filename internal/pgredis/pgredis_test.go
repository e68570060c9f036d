package pgredis

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTLSFilesWrite(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca, err := TLSFiles{Cert: []byte("c"), Key: []byte("k"), ClientCAs: []byte("a")}.Write(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{cert: 0o644, key: 0o600, ca: 0o644} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want || filepath.Dir(path) != dir {
			t.Errorf("%s: %v, %v; want mode %v in %s", path, fi, err, want, dir)
		}
	}
	if _, _, _, err := (TLSFiles{Cert: []byte("c"), Key: []byte("k")}).Write(t.TempDir(), nil); err == nil {
		t.Error("TLS files without client CAs written")
	}
}

func TestSettings(t *testing.T) {
	if !strings.Contains(HBA, "hostssl  all      all      127.0.0.1/32   cert") || strings.Contains(HBA, "password") || strings.Contains(HBA, "md5") {
		t.Errorf("HBA:\n%s", HBA)
	}
	args := PostgresArgs("127.0.0.1", 5432, "/s", "/h", "/c", "/k", "/a")
	for _, want := range []string{"listen_addresses=127.0.0.1", "ssl=on", "ssl_ca_file=/a", "hba_file=/h", "unix_socket_permissions=0700"} {
		if !slices.Contains(args, want) {
			t.Errorf("postgres args lack %s: %v", want, args)
		}
	}
	r := strings.Join(RedisArgs("127.0.0.1", 6379, "/c", "/k", "/a"), " ")
	if !strings.Contains(r, "--port 0 --tls-port 6379") || !strings.Contains(r, "--tls-auth-clients yes") {
		t.Errorf("redis args: %s", r)
	}
	if got := QuoteIdent(`yelb"x`); got != `"yelb""x"` {
		t.Errorf("QuoteIdent: %s", got)
	}
	if got := QuoteLiteral(`it's`); got != `'it''s'` {
		t.Errorf("QuoteLiteral: %s", got)
	}
}
