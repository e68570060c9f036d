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

	t         testing.TB
	p         *proc
	bindir    string
	socketDir string
	owner     *osUser // runs the server; nil: the test's user
	timeout   time.Duration
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
	s := &PostgresServer{t: t, bindir: filepath.Dir(bin), timeout: cfg.timeout, Host: "127.0.0.1"}
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

	for attempt := 1; ; attempt++ {
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
		args = append(args, pgredis.PostgresArgs(s.Host, s.Port, s.socketDir, filepath.Join(dir, "pg_hba.conf"), cert, key, ca)...)
		if s.p == nil {
			if err := s.writeHBA(filepath.Join(dir, "pg_hba.conf"), cfg.password); err != nil {
				t.Fatalf("testenv: postgres: %v", err)
			}
			s.p = newProc(t, "postgres", bin, dir, args, env)
			s.p.attr = s.attr()
			s.LogPath = s.p.logPath
			// Cleanups run last-registered first: this fast shutdown runs
			// before newProc's SIGKILL, so no shared memory is left behind.
			t.Cleanup(func() { s.p.signal(syscall.SIGINT, 10*time.Second) })
		}
		s.p.args = args
		err := s.start()
		if err == nil {
			break
		}
		if attempt < 3 && s.p.logContains("already in use") {
			t.Logf("testenv: postgres: port %d was taken meanwhile, retrying with a new one", s.Port)
			continue
		}
		t.Fatalf("testenv: postgres: %v", err)
	}
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

// Running reports whether the server process is running.
func (s *PostgresServer) Running() bool { return s.p.running() }

// Stop stops the server (a fast shutdown: SIGINT, which ends the clients'
// sessions; SIGKILL after 10s) and waits for it to exit.
func (s *PostgresServer) Stop() {
	s.t.Helper()
	if s.p.signal(syscall.SIGINT, 10*time.Second) {
		s.t.Logf("testenv: postgres did not stop within 10s of SIGINT; killed")
	}
}

// Kill kills the server's main process (SIGKILL), as a crash would, and
// waits for it to exit. Its backends notice and exit by themselves; Start
// waits for that.
func (s *PostgresServer) Kill() {
	s.p.signal(syscall.SIGKILL, 0)
}

// Start starts the stopped server again on the same port with the same data
// and waits until it accepts connections.
func (s *PostgresServer) Start() {
	s.t.Helper()
	// After a Kill the old backends may hold the shared memory for a moment:
	// the new server refuses to start until they are gone.
	deadline := time.Now().Add(s.timeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().Before(deadline) && (s.p.logContains("is still in use") || s.p.logContains("already in use")) {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		s.t.Fatalf("testenv: postgres: %v", err)
	}
}

// Restart is Stop then Start.
func (s *PostgresServer) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

func (s *PostgresServer) start() error {
	t0 := time.Now()
	err := s.p.startReady(s.timeout, func(ctx context.Context) (bool, error) {
		if !s.p.logContains("database system is ready to accept connections") {
			return false, nil
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			return false, err
		}
		_ = c.Close()
		return true, nil
	})
	if err != nil {
		return err
	}
	s.t.Logf("testenv: postgres ready at %s in %s", s.Addr, time.Since(t0).Round(time.Millisecond))
	return nil
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
