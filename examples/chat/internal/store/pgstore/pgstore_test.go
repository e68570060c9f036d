package pgstore_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/store/pgstore"
	"github.com/ztnlabs/ztn/examples/chat/internal/store/storetest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// postgres is a throw-away Postgres server (testenv: TLS only) on which
// the members of chat_owner log in with a password, as the users Vault's
// database secrets engine creates do.
type postgres struct {
	srv *testenv.PostgresServer
	tls *tls.Config // trusts the server's certificate
	n   atomic.Int32
}

// url is a connection string without credentials: they come from the
// CredentialsFunc, TLS from WithTLSConfig.
func (p *postgres) url(db string) string {
	return fmt.Sprintf("postgres://%s/%s", p.srv.Addr, db)
}

func (p *postgres) exec(sql string) string { return p.srv.Exec(sql) }

// startPostgres starts the server; testenv skips the test when Postgres
// is not installed.
func startPostgres(t *testing.T) *postgres {
	t.Helper()
	ca := testenv.NewTestCA(t, "chat db CA")
	srv := testenv.Postgres(t, ca.ServerTLS(t), testenv.PostgresPasswordAuth("+chat_owner"),
		testenv.PostgresSetting("fsync", "off"), testenv.PostgresSetting("max_connections", "80"))
	// The role that owns the chat's objects, as a Vault setup would have it.
	srv.Exec(`CREATE ROLE chat_owner NOLOGIN`)
	return &postgres{srv: srv, tls: testenv.ClientTLS(t, ca, nil, "")}
}

// database makes an empty database owned by chat_owner.
func (p *postgres) database(t *testing.T) string {
	t.Helper()
	db := fmt.Sprintf("chat_%d", p.n.Add(1))
	p.exec(`CREATE DATABASE ` + db + ` OWNER chat_owner`)
	return db
}

// login makes a login user in chat_owner, as Vault's database secrets
// engine makes one per lease.
func (p *postgres) login(t *testing.T) pgstore.Credentials {
	t.Helper()
	c := pgstore.Credentials{User: fmt.Sprintf("v-chat-%d", p.n.Add(1)), Password: fmt.Sprintf("pw-%d", time.Now().UnixNano())}
	p.exec(fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE chat_owner`, pgx.Identifier{c.User}.Sanitize(), c.Password))
	return c
}

func TestPostgres(t *testing.T) {
	pg := startPostgres(t)
	t.Run("Suite", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			db := pg.database(t)
			creds := pg.login(t)
			st, err := pgstore.Open(t.Context(), pg.url(db),
				func(context.Context) (pgstore.Credentials, error) { return creds, nil },
				pgstore.WithOwnerRole("chat_owner"), pgstore.WithTLSConfig(pg.tls), pgstore.WithPollInterval(200*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(st.Close)
			return st
		})
	})
	t.Run("SchemaIdempotent", func(t *testing.T) { testSchema(t, pg) })
	t.Run("Unavailable", func(t *testing.T) { testUnavailable(t, pg) })
	t.Run("RefusedValues", func(t *testing.T) { testRefusedValues(t, pg) })
	t.Run("Rotate", func(t *testing.T) { testRotate(t, pg) })
	t.Run("Trace", func(t *testing.T) { testTrace(t, pg) })
}

// testTrace: a query run for a traced request is a client span under the
// request's; untraced work makes none.
func testTrace(t *testing.T, pg *postgres) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	db := pg.database(t)
	creds := pg.login(t)
	st, err := pgstore.Open(t.Context(), pg.url(db), func(context.Context) (pgstore.Credentials, error) { return creds, nil },
		pgstore.WithTLSConfig(pg.tls), pgstore.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.CreateUser(t.Context(), store.NewUser{Email: "t@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans for untraced work", n)
	}
	ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
	if _, err := st.CreateMessage(ctx, store.NewMessage{Text: "traced", UserID: u.ID, CreatedAt: 1}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var queries []string
	for _, s := range rec.Ended() {
		if s.Name() == "request" {
			continue
		}
		queries = append(queries, s.Name())
		if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %s: parent %s kind %v, want a client span under the request", s.Name(), s.Parent().SpanID(), s.SpanKind())
		}
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		if attrs["db.system.name"] != "postgresql" || attrs["db.namespace"] != db || attrs["db.user"] != creds.User {
			t.Errorf("span %s attributes %v", s.Name(), attrs)
		}
	}
	if !slices.Contains(queries, "postgres WITH") {
		t.Errorf("query spans %v, want the insert (postgres WITH) among them", queries)
	}
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
			st, err := pgstore.Open(t.Context(), pg.url(db),
				func(context.Context) (pgstore.Credentials, error) { return creds, nil }, pgstore.WithOwnerRole("chat_owner"), pgstore.WithTLSConfig(pg.tls))
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
	owners := pg.srv.ExecIn(db, `SELECT tablename || ':' || tableowner FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	if owners != "messages:chat_owner\nusers:chat_owner" {
		t.Fatalf("tables (name:owner) %q", owners)
	}
}

func testUnavailable(t *testing.T, pg *postgres) {
	db := pg.database(t)
	bad := func(context.Context) (pgstore.Credentials, error) {
		return pgstore.Credentials{User: "v-gone", Password: "revoked"}, nil
	}
	if _, err := pgstore.Open(t.Context(), pg.url(db), bad, pgstore.WithTLSConfig(pg.tls)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open with revoked credentials: %v, want ErrUnavailable", err)
	}
	creds := pg.login(t)
	st, err := pgstore.Open(t.Context(), pg.url(db), func(context.Context) (pgstore.Credentials, error) { return creds, nil },
		pgstore.WithTLSConfig(pg.tls))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := st.CountMessages(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("closed store: %v, want ErrUnavailable", err)
	}
}

// testRefusedValues: a value Postgres cannot hold (a NUL in text) is
// ErrInvalid, not an unexplained failure, wherever it is sent; the store
// goes on serving.
func testRefusedValues(t *testing.T, pg *postgres) {
	db := pg.database(t)
	creds := pg.login(t)
	st, err := pgstore.Open(t.Context(), pg.url(db), func(context.Context) (pgstore.Credentials, error) { return creds, nil },
		pgstore.WithTLSConfig(pg.tls))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.CreateUser(t.Context(), store.NewUser{Email: "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	nul := "a\x00b"
	m, err := st.CreateMessage(t.Context(), store.NewMessage{Text: "kept", UserID: u.ID, CreatedAt: 1})
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"CreateUser":  func() error { _, err := st.CreateUser(t.Context(), store.NewUser{Email: nul}); return err },
		"Credentials": func() error { _, _, err := st.Credentials(t.Context(), nul); return err },
		"PatchUser":   func() error { _, err := st.PatchUser(t.Context(), u.ID, store.UserPatch{Avatar: &nul}); return err },
		"CreateMessage": func() error {
			_, err := st.CreateMessage(t.Context(), store.NewMessage{Text: nul, UserID: u.ID})
			return err
		},
		"PatchMessage": func() error { _, err := st.PatchMessage(t.Context(), m.ID, nul); return err },
	} {
		if err := call(); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s with a NUL: %v, want ErrInvalid", name, err)
		}
	}
	if got, err := st.Message(t.Context(), m.ID); err != nil || got.Text != "kept" {
		t.Fatalf("after the refused values: %v, %v", got, err)
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
	st, err := pgstore.Open(t.Context(), pg.url(db), func(context.Context) (pgstore.Credentials, error) {
		connects.Add(1)
		return *current.Load(), nil
	}, pgstore.WithOwnerRole("chat_owner"), pgstore.WithTLSConfig(pg.tls), pgstore.WithPollInterval(200*time.Millisecond), pgstore.WithMaxConns(6))
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
			n := pg.exec(fmt.Sprintf(`SELECT count(*) FROM pg_stat_activity WHERE usename = '%s'`, old.User))
			if n == "0" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s connections of %s remain after Rotate", n, old.User)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// What Vault's revocation does: the old login goes.
		pg.exec(fmt.Sprintf(`DROP ROLE %s`, pgx.Identifier{old.User}.Sanitize()))
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
