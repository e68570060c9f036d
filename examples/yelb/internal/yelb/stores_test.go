package yelb_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/examples/yelb/internal/yelb"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// The database user the app server logs in as: its client certificate's
// common name.
const dbUser = "yelb-appserver"

// backend is a real Postgres and Redis, TLS only, trusting ca's clients.
type backend struct {
	ca    *testenv.TestCA
	pg    *testenv.PostgresServer
	redis *testenv.RedisServer
}

func newBackend(t testing.TB) *backend {
	t.Helper()
	ca := testenv.NewTestCA(t, "yelb test CA")
	return &backend{
		ca:    ca,
		pg:    testenv.Postgres(t, ca.ServerTLS(t), testenv.PostgresDatabase(yelb.Database, dbUser)),
		redis: testenv.Redis(t, ca.ServerTLS(t)),
	}
}

// stores connects to the backend with a certificate for cn from clientCA
// (none if nil), logging in to Postgres as dbUser.
func (b *backend) stores(t testing.TB, clientCA *testenv.TestCA, cn string) (*yelb.Postgres, *yelb.Redis) {
	t.Helper()
	cfg := testenv.ClientTLS(t, b.ca, clientCA, cn)
	pg, err := yelb.NewPostgres(b.pg.Addr, dbUser, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	rd, err := yelb.NewRedis(b.redis.Addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rd.Close() })
	return pg, rd
}

func (b *backend) app(t *testing.T, hostname string) *httptest.Server {
	t.Helper()
	pg, rd := b.stores(t, b.ca, dbUser)
	app, err := yelb.NewAppServer(pg, rd, hostname, yelb.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return srv
}

// The API table, the schema, and outages, against real Postgres and Redis
// reached with client certificates.
func TestPostgresRedis(t *testing.T) {
	b := newBackend(t)
	app := b.app(t, "appserver-1")

	t.Run("conformance", func(t *testing.T) {
		conformance(t, app.URL, "appserver-1")
	})

	t.Run("schema", func(t *testing.T) {
		got := b.pg.ExecIn(yelb.Database, `SELECT column_name || ' ' || data_type || coalesce('(' || character_maximum_length || ')', '')
			FROM information_schema.columns WHERE table_name = 'restaurants' ORDER BY ordinal_position`)
		if want := "name character(30)\ncount integer"; got != want {
			t.Errorf("columns:\n%s\nwant:\n%s", got, want)
		}
		pk := b.pg.ExecIn(yelb.Database, `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
			WHERE i.indrelid = 'restaurants'::regclass AND i.indisprimary`)
		if pk != "name" {
			t.Errorf("primary key %q; want name", pk)
		}
		rows := b.pg.ExecIn(yelb.Database, "SELECT rtrim(name) || '=' || count FROM restaurants ORDER BY name")
		if want := "bucadibeppo=2\nchipotle=2\nihop=3\noutback=2"; rows != want {
			t.Errorf("rows:\n%s\nwant:\n%s", rows, want)
		}
	})

	t.Run("restart keeps votes", func(t *testing.T) {
		// Another app server (a restart, or a replica) on the same database:
		// the schema step finds the table and keeps the counts.
		app2 := b.app(t, "appserver-2")
		expect(t, app2.URL, "/api/getvotes", 200, votesJSON(2, 2, 3, 2))
		expect(t, app2.URL, "/api/hostname", 200, "appserver-2")
		expect(t, app2.URL, "/api/pageviews", 200, "8")
		expect(t, app.URL, "/api/pageviews", 200, "9")
	})

	t.Run("redis down", func(t *testing.T) {
		b.redis.Kill()
		expect(t, app.URL, "/api/pageviews", 500, "page views unavailable")
		expect(t, app.URL, "/api/getstats", 500, "page views unavailable")
		expect(t, app.URL, "/api/getvotes", 200, votesJSON(2, 2, 3, 2))
		expect(t, app.URL, "/api/ihop", 200, "4")
		expect(t, app.URL, "/api/hostname", 200, "appserver-1")
		b.redis.Start()
		// Back at the first request, with the count kept (appendonly).
		expect(t, app.URL, "/api/pageviews", 200, "10")
		expect(t, app.URL, "/api/getstats", 200, `{"hostname":"appserver-1","pageviews":11}`)
	})

	t.Run("postgres down", func(t *testing.T) {
		b.pg.Kill()
		expect(t, app.URL, "/api/getvotes", 500, "votes unavailable")
		expect(t, app.URL, "/api/ihop", 500, "votes unavailable")
		expect(t, app.URL, "/api/pageviews", 200, "12")
		expect(t, app.URL, "/api/getstats", 200, `{"hostname":"appserver-1","pageviews":13}`)
		expect(t, app.URL, "/api/hostname", 200, "appserver-1")
		b.pg.Start()
		expect(t, app.URL, "/api/getvotes", 200, votesJSON(2, 2, 4, 2))
		expect(t, app.URL, "/api/ihop", 200, "5")
	})

	t.Run("both restarted gracefully", func(t *testing.T) {
		b.pg.Restart()
		b.redis.Restart()
		expect(t, app.URL, "/api/outback", 200, "3")
		expect(t, app.URL, "/api/pageviews", 200, "14")
	})

	t.Run("refused", func(t *testing.T) {
		other := testenv.NewTestCA(t, "another CA")
		for _, tc := range []struct {
			name     string
			clientCA *testenv.TestCA
			cn       string
		}{
			{"no client certificate", nil, dbUser},
			{"a certificate from another CA", other, dbUser},
		} {
			pg, rd := b.stores(t, tc.clientCA, tc.cn)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			err := pg.Ping(ctx)
			if err == nil {
				t.Errorf("postgres, %s: accepted", tc.name)
			} else {
				t.Logf("postgres, %s: %v", tc.name, err)
			}
			if _, err := pg.Vote(ctx, "ihop"); err == nil {
				t.Errorf("postgres, %s: vote accepted", tc.name)
			}
			err = rd.Ping(ctx)
			if err == nil {
				t.Errorf("redis, %s: accepted", tc.name)
			} else {
				t.Logf("redis, %s: %v", tc.name, err)
			}
			if _, err := rd.PageView(ctx); err == nil {
				t.Errorf("redis, %s: page view counted", tc.name)
			}
			cancel()
		}
		// A certificate of the mesh for another service does not log in as
		// the app server's database user.
		pg, _ := b.stores(t, b.ca, "intruder")
		if err := pg.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate authentication failed") {
			t.Errorf("postgres, another service's certificate: %v", err)
		}
		// Nothing was counted by the refused clients.
		expect(t, app.URL, "/api/getvotes", 200, votesJSON(3, 2, 5, 2))
		expect(t, app.URL, "/api/pageviews", 200, "15")
	})
}

func TestNewStoresNeedTLS(t *testing.T) {
	if _, err := yelb.NewPostgres("127.0.0.1:5432", dbUser, nil); err == nil {
		t.Error("NewPostgres without TLS: no error")
	}
	if _, err := yelb.NewRedis("127.0.0.1:6379", nil); err == nil {
		t.Error("NewRedis without TLS: no error")
	}
	if _, err := yelb.NewPostgres("127.0.0.1", dbUser, &tls.Config{}); err == nil {
		t.Error("NewPostgres without a port: no error")
	}
}

var _ http.Handler = (*yelb.AppServer)(nil)

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}
