package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/pgredis"
)

// PostgresServer is a PostgreSQL cluster of its own (initdb in a fresh
// directory), started by Postgres. Clients reach it over TCP on 127.0.0.1
// with TLS only, and authenticate with a client certificate only
// (pg_hba.conf "hostssl all all 127.0.0.1/32 cert"): the certificate must
// chain to ServerTLS.ClientCAs and its common name must be the database user
// name. There is no password anywhere, but for the users a test names with
// [PostgresPasswordAuth]. The superuser "postgres" can connect
// over a Unix socket in the server's private directory only (never over
// TCP); [PostgresServer.Exec] uses it.
//
// Unlike Vault's and Consul's dev modes the data is on disk: it survives
// Stop/Kill and Start.
type PostgresServer struct {
	// Addr is the TCP listener's host:port (TLS only).
	Addr string
	// Host and Port are Addr's parts (what pgx's Config wants).
	Host string
	Port int
	// DataDir is the cluster's directory; LogPath the server's output,
	// across restarts.
	DataDir string
	LogPath string

	server
	bindir    string
	socketDir string
	owner     *osUser // runs the server; nil: the test's user
}

// PostgresOption configures Postgres.
type PostgresOption func(*postgresConfig)

type postgresConfig struct {
	dbs      [][2]string // name, owner
	settings []string    // name=value
	password []string    // pg_hba.conf users allowed to log in with a password
	timeout  time.Duration
}

// PostgresDatabase creates, once the server is up, a login role owner (if
// it does not exist; a client whose certificate's common name is owner
// logs in as it) and a database name owned by it.
func PostgresDatabase(name, owner string) PostgresOption {
	return func(c *postgresConfig) { c.dbs = append(c.dbs, [2]string{name, owner}) }
}

// PostgresSetting sets a server parameter (postgres -c name=value), after
// testenv's own settings so that it can override them; the listener, TLS
// and socket settings win.
func PostgresSetting(name, value string) PostgresOption {
	return func(c *postgresConfig) { c.settings = append(c.settings, name+"="+value) }
}

// PostgresPasswordAuth lets the users named log in with a password
// (scram-sha-256) instead of a client certificate, still over TLS only:
// one pg_hba.conf line "hostssl all <user> 127.0.0.1/32 scram-sha-256"
// each, before the certificate rule. A name may be "+role", for every
// member of role. It is for clients that cannot present a certificate,
// such as Vault's database secrets engine and the users it creates; the
// test sets the passwords itself (Exec "CREATE ROLE ... PASSWORD ...").
func PostgresPasswordAuth(users ...string) PostgresOption {
	return func(c *postgresConfig) { c.password = append(c.password, users...) }
}

// PostgresStartTimeout sets how long initdb and each start may take before
// the test fails (default 60s).
func PostgresStartTimeout(d time.Duration) PostgresOption {
	return func(c *postgresConfig) { c.timeout = d }
}

// Postgres creates a PostgreSQL cluster in a fresh directory and starts it
// on a free port of 127.0.0.1 with TLS from tlsFiles (see [PostgresServer]),
// waits until it accepts connections, then creates the databases of
// [PostgresDatabase]. When the test runs as root, initdb and the server run
// as the system user "postgres" (they refuse root). The server is stopped
// when the test ends. The test is skipped if PostgreSQL is not installed
// (Debian package postgresql; ZTN_POSTGRES_BIN names the postgres binary,
// initdb and psql beside it) and fails if ZTN_REQUIRE_TOOLS is set.
func Postgres(t testing.TB, tlsFiles ServerTLS, opts ...PostgresOption) *PostgresServer {
	t.Helper()
	cfg := postgresConfig{timeout: 60 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	bin := systemBinary(t, "PostgreSQL (postgres, initdb)", "postgresql", "ZTN_POSTGRES_BIN",
		append(pgredis.DebianPostgresBinaries(), "postgres")...)
	s := &PostgresServer{bindir: filepath.Dir(bin), Host: "127.0.0.1", server: server{t: t, timeout: cfg.timeout,
		stopSignal: syscall.SIGINT, // a fast shutdown, which ends the clients' sessions
		busy:       []string{"is still in use", "already in use"},
	}}
	if os.Geteuid() == 0 {
		u, err := pgredis.LookupUser("postgres")
		if err != nil {
			t.Fatalf("testenv: postgres refuses to run as root and there is no user to run it as: %v", err)
		}
		s.owner = u
	}
	dir := serverDir(t, "postgres", s.owner)
	s.socketDir = dir
	s.DataDir = filepath.Join(dir, "data")
	cert, key, ca, err := tlsFiles.write(dir, s.owner)
	if err != nil {
		t.Fatalf("testenv: postgres: %v", err)
	}
	if err := s.initdb(); err != nil {
		t.Fatalf("testenv: postgres: %v", err)
	}
	env := cleanEnv([]string{"PG", "LC_", "LANG="}, "LANG=C")

	if err := s.writeHBA(filepath.Join(dir, "pg_hba.conf"), cfg.password); err != nil {
		t.Fatalf("testenv: postgres: %v", err)
	}
	s.p = newProc(t, "postgres", bin, dir, nil, env)
	s.p.attr = s.attr()
	s.LogPath = s.p.logPath
	// Cleanups run last-registered first: this fast shutdown runs before
	// newProc's SIGKILL, so no shared memory is left behind.
	t.Cleanup(func() { s.p.signal(syscall.SIGINT, 10*time.Second) })
	s.server.ready = logThenDial(s.p, "database system is ready to accept connections", func() string { return s.Addr })
	s.where = func() string { return "at " + s.Addr }
	s.startOnFreePorts(func() ([]string, error) {
		s.Port = FreePort(t)
		s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
		args := []string{"-D", s.DataDir,
			// Fast and small: a test's data need not survive a power cut
			// (a killed server loses nothing committed, though).
			"-c", "fsync=off", "-c", "full_page_writes=off",
			"-c", "shared_buffers=16MB", "-c", "max_connections=50",
			"-c", "log_connections=on", "-c", "log_min_messages=info",
		}
		for _, kv := range cfg.settings {
			args = append(args, "-c", kv)
		}
		return append(args, pgredis.PostgresArgs(s.Host, s.Port, s.socketDir, filepath.Join(dir, "pg_hba.conf"), cert, key, ca)...), nil
	})
	for _, db := range cfg.dbs {
		name, owner := pgredis.QuoteIdent(db[0]), pgredis.QuoteIdent(db[1])
		s.Exec(fmt.Sprintf(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %s) THEN CREATE ROLE %s LOGIN; END IF; END $$`,
			pgredis.QuoteLiteral(db[1]), owner))
		s.Exec(fmt.Sprintf("CREATE DATABASE %s OWNER %s", name, owner))
	}
	return s
}

func (s *PostgresServer) attr() *syscall.SysProcAttr {
	if s.owner == nil {
		return nil
	}
	return pgredis.SysProcAttr(s.owner)
}

// initdb creates the cluster: superuser "postgres", UTF-8, C locale.
func (s *PostgresServer) initdb() error {
	cmd := exec.Command(filepath.Join(s.bindir, "initdb"), pgredis.InitdbArgs(s.DataDir)...)
	cmd.Dir = s.socketDir
	cmd.Env = cleanEnv([]string{"PG", "LC_", "LANG="}, "LANG=C")
	if s.owner != nil {
		cmd.SysProcAttr = pgredis.SysProcAttr(s.owner)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			if cmd.Process != nil {
				_ = cmd.Process.Kill()
			}
		case <-done:
		}
	}()
	out, err := cmd.CombinedOutput()
	close(done)
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

// writeHBA allows the superuser on the private Unix socket only (trust:
// only the test's user and the server's can enter the directory), the
// password users over TLS with a password, and everyone else over TLS with
// a client certificate only.
func (s *PostgresServer) writeHBA(path string, password []string) error {
	var pw strings.Builder
	for _, u := range password {
		if u == "" || strings.ContainsAny(u, " \t\r\n#\"") || u == "postgres" {
			return fmt.Errorf("PostgresPasswordAuth: unusable user name %q", u)
		}
		pw.WriteString("hostssl  all      " + u + " 127.0.0.1/32   scram-sha-256\n")
	}
	const certLine = "hostssl  all      all      127.0.0.1/32   cert\n"
	hba := strings.Replace(pgredis.HBA, certLine, pw.String()+certLine, 1)
	if err := os.WriteFile(path, []byte("# written by testenv.Postgres\n"+hba), 0o600); err != nil {
		return err
	}
	return s.owner.Chown(path)
}

// Exec runs SQL (one or more statements) as the superuser in the database
// "postgres" with psql over the Unix socket, and returns psql's unaligned,
// tuples-only output (fields separated by |). It fails the test on an
// error.
func (s *PostgresServer) Exec(sql string) string {
	s.t.Helper()
	return s.ExecIn("postgres", sql)
}

// ExecIn is Exec in the database db.
func (s *PostgresServer) ExecIn(db, sql string) string {
	s.t.Helper()
	out, err := s.psql(db, sql)
	if err != nil {
		s.t.Fatalf("testenv: postgres: %v", err)
	}
	return out
}

func (s *PostgresServer) psql(db, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bindir, "psql"), "-X", "-q", "-A", "-t",
		"-v", "ON_ERROR_STOP=1", "-h", s.socketDir, "-p", strconv.Itoa(s.Port), "-U", "postgres", "-d", db,
		"-c", sql)
	cmd.Env = cleanEnv([]string{"PG"})
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("psql %q: %w: %s", sql, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
