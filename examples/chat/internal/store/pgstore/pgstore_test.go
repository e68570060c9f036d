package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/store/pgstore"
	"github.com/ztnlabs/ztn/examples/chat/internal/store/storetest"
)

// postgres is a throw-away Postgres server for one test binary run.
type postgres struct {
	port  int
	admin *pgx.Conn
	n     atomic.Int32
}

const adminPassword = "admin-pw"

func (p *postgres) url(user, password, db string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", user, password, p.port, db)
}

func (p *postgres) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := p.admin.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// startPostgres runs initdb and postgres in a temporary directory, as the
// postgres user when the test runs as root; it skips the test when no
// postgres binary is installed.
func startPostgres(t *testing.T) *postgres {
	t.Helper()
	bin, err := exec.LookPath("postgres")
	if err != nil {
		t.Skip("no postgres binary on PATH")
	}
	if real, err := filepath.EvalSymlinks(bin); err == nil {
		bin = real
	}
	initdb := filepath.Join(filepath.Dir(bin), "initdb")
	if _, err := os.Stat(initdb); err != nil {
		if initdb, err = exec.LookPath("initdb"); err != nil {
			t.Skip("no initdb next to postgres")
		}
	}
	dir, err := os.MkdirTemp("", "chat-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root and there is no postgres user to run postgres as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(adminPassword), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "admin", "--pwfile="+pwfile, "--auth-local=trust",
		"--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := exec.Command(bin, "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=80", "-c", "shared_buffers=16MB")
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { srv.Wait(); close(exited) }()
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			srv.Process.Kill()
			<-exited
		}
	})
	p := &postgres{port: port}
	deadline := time.Now().Add(60 * time.Second)
	for {
		p.admin, err = pgx.Connect(t.Context(), p.url("admin", adminPassword, "postgres"))
		if err == nil {
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("postgres exited:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres did not come up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() { p.admin.Close(context.Background()) })
	// The role that owns the chat's objects, as a Vault setup would have it.
	p.exec(t, `CREATE ROLE chat_owner NOLOGIN`)
	return p
}

// database makes an empty database owned by chat_owner.
func (p *postgres) database(t *testing.T) string {
	t.Helper()
	db := fmt.Sprintf("chat_%d", p.n.Add(1))
	p.exec(t, `CREATE DATABASE `+db+` OWNER chat_owner`)
	return db
}

// login makes a login user in chat_owner, as Vault's database secrets
// engine makes one per lease.
func (p *postgres) login(t *testing.T) pgstore.Credentials {
	t.Helper()
	c := pgstore.Credentials{User: fmt.Sprintf("v-chat-%d", p.n.Add(1)), Password: fmt.Sprintf("pw-%d", time.Now().UnixNano())}
	p.exec(t, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE chat_owner`, pgx.Identifier{c.User}.Sanitize(), c.Password))
	return c
}

func TestPostgres(t *testing.T) {
	pg := startPostgres(t)
	t.Run("Suite", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			db := pg.database(t)
			creds := pg.login(t)
			st, err := pgstore.Open(t.Context(), pg.url("nobody", "wrong", db),
				func(context.Context) (pgstore.Credentials, error) { return creds, nil },
				pgstore.WithOwnerRole("chat_owner"), pgstore.WithPollInterval(200*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(st.Close)
			return st
		})
	})
	t.Run("SchemaIdempotent", func(t *testing.T) { testSchema(t, pg) })
	t.Run("Unavailable", func(t *testing.T) { testUnavailable(t, pg) })
	t.Run("Rotate", func(t *testing.T) { testRotate(t, pg) })
}

// testSchema: instances opening together both succeed, and the tables
// belong to chat_owner, not to the login that created them.
func testSchema(t *testing.T, pg *postgres) {
	db := pg.database(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		creds := pg.login(t)
		wg.Go(func() {
			st, err := pgstore.Open(t.Context(), pg.url("x", "y", db),
				func(context.Context) (pgstore.Credentials, error) { return creds, nil }, pgstore.WithOwnerRole("chat_owner"))
			if err == nil {
				st.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	conn, err := pgx.Connect(t.Context(), pg.url("admin", adminPassword, db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(t.Context(), `SELECT tablename || ':' || tableowner FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(owners) != 2 || owners[0] != "messages:chat_owner" || owners[1] != "users:chat_owner" {
		t.Fatalf("tables %v, %v", owners, err)
	}
}

func testUnavailable(t *testing.T, pg *postgres) {
	db := pg.database(t)
	bad := func(context.Context) (pgstore.Credentials, error) {
		return pgstore.Credentials{User: "v-gone", Password: "revoked"}, nil
	}
	if _, err := pgstore.Open(t.Context(), pg.url("x", "y", db), bad); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open with revoked credentials: %v, want ErrUnavailable", err)
	}
	creds := pg.login(t)
	st, err := pgstore.Open(t.Context(), pg.url("x", "y", db), func(context.Context) (pgstore.Credentials, error) { return creds, nil })
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := st.CountMessages(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("closed store: %v, want ErrUnavailable", err)
	}
}

// testRotate: the credentials change three times under a steady stream of
// posts, each old login is dropped after Rotate (as Vault revokes a
// lease), and not one post fails or is lost, nor missed by a follower.
func testRotate(t *testing.T, pg *postgres) {
	db := pg.database(t)
	var current atomic.Pointer[pgstore.Credentials]
	first := pg.login(t)
	current.Store(&first)
	var connects atomic.Int32
	st, err := pgstore.Open(t.Context(), pg.url("x", "y", db), func(context.Context) (pgstore.Credentials, error) {
		connects.Add(1)
		return *current.Load(), nil
	}, pgstore.WithOwnerRole("chat_owner"), pgstore.WithPollInterval(200*time.Millisecond), pgstore.WithMaxConns(6))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	u, err := st.CreateUser(ctx, store.NewUser{Email: "w@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	pos, err := st.Position(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seen atomic.Int64
	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	followDone := make(chan error, 1)
	go func() {
		followDone <- st.Follow(fctx, pos, func(ev store.Event) error {
			if ev.Message != nil {
				seen.Add(1)
			}
			return nil
		})
	}()

	var posted, failed atomic.Int64
	stopPosting := make(chan struct{})
	var wg sync.WaitGroup
	stop := sync.OnceFunc(func() { close(stopPosting); wg.Wait() })
	defer stop() // also when the test fails early
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stopPosting:
					return
				default:
				}
				if _, err := st.CreateMessage(ctx, store.NewMessage{Text: fmt.Sprint(w, "-", i), UserID: u.ID, CreatedAt: 1}); err != nil {
					failed.Add(1)
					t.Errorf("post failed: %v", err)
					continue
				}
				if _, err := st.FindMessages(ctx, store.Query{Limit: 5, Sort: []store.SortField{{Field: "createdAt", Desc: true}}}); err != nil {
					failed.Add(1)
					t.Errorf("find failed: %v", err)
				}
				posted.Add(1)
			}
		})
	}
	old := first
	for range 3 {
		time.Sleep(300 * time.Millisecond)
		next := pg.login(t)
		current.Store(&next)
		st.Rotate()
		// No connection of the old login remains once requests in flight end.
		deadline := time.Now().Add(10 * time.Second)
		for {
			var n int
			if err := pg.admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, old.User).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d connections of %s remain after Rotate", n, old.User)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// What Vault's revocation does: the old login goes.
		pg.exec(t, fmt.Sprintf(`DROP ROLE %s`, pgx.Identifier{old.User}.Sanitize()))
		old = next
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed across rotations", failed.Load(), posted.Load())
	}
	n, err := st.CountMessages(ctx)
	if err != nil || int64(n) != posted.Load() || n < 20 {
		t.Fatalf("%d messages stored, %d posted (%v)", n, posted.Load(), err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for seen.Load() != posted.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("follower saw %d of %d messages", seen.Load(), posted.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopFollow()
	if err := <-followDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow = %v", err)
	}
	t.Logf("%d posts, %d connections opened, 3 rotations, 0 failures", posted.Load(), connects.Load())
}
