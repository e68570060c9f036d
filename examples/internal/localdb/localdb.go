// Package localdb starts a PostgreSQL cluster and a Redis server of the
// program's own, for the examples' one-process demos (Yelb, chat): on 127.0.0.1, on free ports,
// in a fresh temporary directory, with TLS only and client-certificate
// authentication against the CA the caller gives (Postgres: pg_hba.conf
// "hostssl ... cert", the certificate's common name is the database user;
// Redis: tls-auth-clients yes). There is no password anywhere. The servers
// come from the Debian packages postgresql and redis-server; [Find] says
// whether they are installed.
//
// The tests start their servers with internal/test/testenv, which does the
// same with more control (restarts on the same port, logs in the test
// output); both take the servers' settings (pg_hba.conf, the TLS-only
// listeners), their TLS files and their system user from internal/pgredis.
// This package is the small part a program needs.
//
//	bins := localdb.Find()
//	if bins.Missing() != "" { ... use an in-memory store ... }
//	pg, err := localdb.StartPostgres(ctx, bins, serverTLS, "yelbdatabase", "yelb-appserver")
//	...
//	defer pg.Stop()
//	rd, err := localdb.StartRedis(ctx, bins, serverTLS)
//	...
//	defer rd.Stop()
package localdb

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ztnlabs/ztn/internal/pgredis"
)

// TLS is what a server presents and trusts, all PEM: its certificate (chain,
// leaf first; it should name 127.0.0.1) and key, and the CA certificates a
// client's certificate must chain to.
type TLS = pgredis.TLSFiles

// Binaries are the server programs found on this machine.
type Binaries struct {
	// PostgresDir holds postgres, initdb and psql ("" if not found).
	PostgresDir string
	// RedisServer is redis-server's path ("" if not found).
	RedisServer string
}

// Find looks for PostgreSQL (Debian's /usr/lib/postgresql/<version>/bin,
// newest first, then $PATH) and redis-server ($PATH).
func Find() Binaries {
	var b Binaries
	for _, pg := range pgredis.DebianPostgresBinaries() {
		d := filepath.Dir(pg)
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "psql")) {
			b.PostgresDir = d
			break
		}
	}
	if b.PostgresDir == "" {
		if p, err := exec.LookPath("initdb"); err == nil {
			d := filepath.Dir(p)
			if isFile(filepath.Join(d, "postgres")) && isFile(filepath.Join(d, "psql")) {
				b.PostgresDir = d
			}
		}
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		b.RedisServer = p
	}
	return b
}

// Missing names the Debian packages whose servers were not found, or "".
func (b Binaries) Missing() string {
	var m []string
	if b.PostgresDir == "" {
		m = append(m, "postgresql")
	}
	if b.RedisServer == "" {
		m = append(m, "redis-server")
	}
	return strings.Join(m, " ")
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Server is a running server.
type Server struct {
	// Addr is its TLS listener, 127.0.0.1:port.
	Addr string
	// Dir is its temporary directory (data, log), removed by Stop.
	Dir string
	// LogPath is its output.
	LogPath string

	cmd     *exec.Cmd
	stopSig syscall.Signal
	done    chan struct{}
	once    sync.Once
}

// Stop stops the server (SIGKILL after 10s), waits for it and removes its
// directory.
func (s *Server) Stop() error {
	var err error
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(s.stopSig)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
			err = fmt.Errorf("localdb: %s did not stop within 10s; killed", filepath.Base(s.cmd.Path))
		}
		if e := os.RemoveAll(s.Dir); e != nil && err == nil {
			err = fmt.Errorf("localdb: %w", e)
		}
	})
	return err
}

// postgresUser is the system user Postgres runs as when the program runs
// as root (Postgres refuses root), or nil.
func postgresUser() (*pgredis.User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := pgredis.LookupUser("postgres")
	if err != nil {
		return nil, fmt.Errorf("localdb: postgres refuses to run as root and there is no user postgres: %w", err)
	}
	return u, nil
}

// newDir makes the server's directory, owned by u, and writes the TLS files
// in it.
func newDir(name string, t TLS, u *pgredis.User) (dir, cert, key, ca string, err error) {
	dir, err = os.MkdirTemp("", "ztn-example-"+name+"-")
	if err != nil {
		return "", "", "", "", fmt.Errorf("localdb: %w", err)
	}
	if err = u.Chown(dir); err == nil {
		cert, key, ca, err = t.Write(dir, u)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", "", "", "", fmt.Errorf("localdb: %w", err)
	}
	return dir, cert, key, ca, nil
}

// freePort returns a port of 127.0.0.1 free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localdb: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs bin with its output in dir/<name>.log, and waits until the log
// says ready and addr accepts TCP connections.
func start(ctx context.Context, name, bin string, args []string, dir string, u *pgredis.User, stopSig syscall.Signal, ready, addr string) (*Server, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("localdb: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = pgredis.SysProcAttr(u)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("localdb: start %s: %w", name, err)
	}
	s := &Server{Addr: addr, Dir: dir, LogPath: logPath, cmd: cmd, stopSig: stopSig, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), ready) {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				_ = c.Close()
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("localdb: %s exited at start; its log:\n%s", name, tail(logPath))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-s.done
			return nil, fmt.Errorf("localdb: %s not ready: %w; its log:\n%s", name, ctx.Err(), tail(logPath))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail is the end of a log, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
