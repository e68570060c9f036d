// Package pgredis is what the programs that start PostgreSQL and Redis
// servers of their own share: where Debian puts PostgreSQL's binaries, the
// system user a server runs as, the server's TLS files, and the settings
// that make both servers TLS-only on loopback with client-certificate
// authentication and no password (pg_hba.conf, postgres and redis-server
// arguments). It starts nothing: internal/test/testenv (for tests) and
// examples/internal/localdb (for the Yelb demo) run the processes.
package pgredis

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// User is a system account a server runs as (PostgreSQL refuses root).
type User struct {
	Name     string
	UID, GID uint32
}

// LookupUser finds the account name.
func LookupUser(name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("pgredis: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgredis: user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgredis: user %s: gid %q: %w", name, u.Gid, err)
	}
	return &User{Name: name, UID: uint32(uid), GID: uint32(gid)}, nil
}

// Chown gives path to u; a nil u (the program's own user) changes nothing.
func (u *User) Chown(path string) error {
	if u == nil {
		return nil
	}
	if err := os.Chown(path, int(u.UID), int(u.GID)); err != nil {
		return fmt.Errorf("pgredis: %w", err)
	}
	return nil
}

// TLSFiles is what a server presents and trusts, all PEM: its certificate
// (chain, leaf first; it should name 127.0.0.1) and key, and the CA
// certificates a client's certificate must chain to.
type TLSFiles struct {
	Cert, Key, ClientCAs []byte
}

// Write writes the files in dir as server.crt, server.key (mode 0600) and
// clients-ca.crt, owned by owner, and returns their paths.
func (f TLSFiles) Write(dir string, owner *User) (cert, key, ca string, err error) {
	if len(f.Cert) == 0 || len(f.Key) == 0 || len(f.ClientCAs) == 0 {
		return "", "", "", fmt.Errorf("pgredis: TLS files need Cert, Key and ClientCAs")
	}
	cert, key, ca = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), filepath.Join(dir, "clients-ca.crt")
	for _, w := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{cert, f.Cert, 0o644}, {key, f.Key, 0o600}, {ca, f.ClientCAs, 0o644}} {
		if err := os.WriteFile(w.path, w.data, w.mode); err != nil {
			return "", "", "", fmt.Errorf("pgredis: %w", err)
		}
		if err := owner.Chown(w.path); err != nil {
			return "", "", "", err
		}
	}
	return cert, key, ca, nil
}

// DebianPostgresBinaries lists /usr/lib/postgresql/<version>/bin/postgres,
// newest version first (initdb and psql are beside it).
func DebianPostgresBinaries() []string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	version := func(p string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(p))), 64)
		return v
	}
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	return matches
}

// InitdbArgs are initdb's arguments for a cluster in dataDir: superuser
// "postgres", UTF-8, C locale, trust (pg_hba.conf is replaced by HBA before
// the server starts).
func InitdbArgs(dataDir string) []string {
	return []string{"-D", dataDir, "-U", "postgres", "-E", "UTF8", "--no-locale", "--auth=trust", "--no-sync"}
}

// HBA is the pg_hba.conf of such a server: the superuser on the private
// Unix socket only (trust: only the server's user and the program's can
// enter its directory), everyone else over TLS with a client certificate
// whose common name is the user, from 127.0.0.1 only.
const HBA = `# TYPE   DATABASE USER     ADDRESS        METHOD
local    all      postgres                trust
hostssl  all      postgres 127.0.0.1/32   reject
hostssl  all      all      127.0.0.1/32   cert
`

// PostgresArgs are the postgres settings that give it its listener (host,
// port, TLS only with the files of TLSFiles.Write, the client CAs checked),
// its private Unix socket directory and the pg_hba.conf at hba. Give them
// after any other -c settings, so that they win.
func PostgresArgs(host string, port int, socketDir, hba, cert, key, ca string) []string {
	return []string{
		"-c", "listen_addresses=" + host, "-p", strconv.Itoa(port),
		"-c", "unix_socket_directories=" + socketDir, "-c", "unix_socket_permissions=0700",
		"-c", "ssl=on", "-c", "ssl_cert_file=" + cert, "-c", "ssl_key_file=" + key, "-c", "ssl_ca_file=" + ca,
		"-c", "hba_file=" + hba,
	}
}

// RedisArgs are the redis-server arguments (after the configuration file)
// that give it its listener: TLS only on host:port, no plain port, a client
// certificate chaining to ca required.
func RedisArgs(host string, port int, cert, key, ca string) []string {
	return []string{
		"--bind", host, "--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca,
		"--tls-auth-clients", "yes",
	}
}

// QuoteIdent quotes a PostgreSQL identifier.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// QuoteLiteral quotes a PostgreSQL string literal.
func QuoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
