package yelb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Database is the name of Yelb's Postgres database.
const Database = "yelbdatabase"

// schema creates Yelb's table and seed rows unless they exist: the
// original's init-yelb-db.sh, made idempotent.
const schema = `CREATE TABLE IF NOT EXISTS restaurants (
	name  char(30),
	count integer,
	PRIMARY KEY (name)
);
INSERT INTO restaurants (name, count) VALUES
	('outback', 0), ('bucadibeppo', 0), ('chipotle', 0), ('ihop', 0)
ON CONFLICT (name) DO NOTHING`

// Postgres is the [VoteStore] in a Postgres database ([Database], table
// restaurants), reached over TLS only and authenticated by the client
// certificate of its tls.Config (Postgres's "cert" method: the
// certificate's common name is the database user); there is no password.
// It keeps a pool of connections that survives the server's restarts: while
// the server is down every call fails, and the first calls after it is back
// succeed again.
//
// The table and its four rows are created on first use if they are missing,
// so the database must exist and the user must be allowed to create tables
// in it (e.g. own it).
type Postgres struct {
	pool *pgxpool.Pool

	mu       sync.Mutex // held while creating the schema
	schemaOK bool
}

// NewPostgres returns the store for the Postgres server at addr
// (host:port), logging in as user with the client certificate of
// tlsConfig, which must also verify the server (RootCAs; ServerName
// defaults to addr's host). It does not connect: every call does (or
// reuses a connection), so the server may start later.
func NewPostgres(addr, user string, tlsConfig *tls.Config) (*Postgres, error) {
	if tlsConfig == nil {
		return nil, errors.New("yelb: postgres: a TLS config is required (no plain connections)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("yelb: postgres address: %w", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("yelb: postgres address %q: bad port", addr)
	}
	// sslmode=disable stops pgx from building a TLS config (and plain-text
	// fallbacks) of its own; ours is set below.
	dsn := fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable connect_timeout=5",
		dsnQuote(host), port, dsnQuote(user), Database)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("yelb: postgres: %w", err)
	}
	tc := tlsConfig.Clone()
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	cfg.ConnConfig.TLSConfig = tc
	cfg.ConnConfig.Fallbacks = nil
	cfg.ConnConfig.Password = ""
	cfg.MaxConns = 8
	cfg.MaxConnIdleTime = time.Minute
	// A connection that sat idle may be dead (a server restart): ping it
	// before use rather than fail the request.
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return true }
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("yelb: postgres: %w", err)
	}
	return &Postgres{pool: pool}, nil
}

// dsnQuote quotes a value of a key=value connection string.
func dsnQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Close closes the pool's connections.
func (p *Postgres) Close() { p.pool.Close() }

// Ping checks that the server accepts the client and the schema is there
// (creating it if needed).
func (p *Postgres) Ping(ctx context.Context) error {
	return p.ensureSchema(ctx)
}

// ensureSchema creates the table and rows once per Postgres value (again
// after a failure).
func (p *Postgres) ensureSchema(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.schemaOK {
		return nil
	}
	if _, err := p.pool.Exec(ctx, schema); err != nil {
		return fmt.Errorf("yelb: postgres: create the schema: %w", err)
	}
	p.schemaOK = true
	return nil
}

// Votes implements [VoteStore].
func (p *Postgres) Votes(ctx context.Context) ([]Vote, error) {
	if err := p.ensureSchema(ctx); err != nil {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, "SELECT name, count FROM restaurants")
	if err != nil {
		return nil, fmt.Errorf("yelb: postgres: read the votes: %w", err)
	}
	counts := make(map[string]int64, len(restaurants))
	var (
		name  string
		count int64
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &count}, func() error {
		counts[strings.TrimRight(name, " ")] = count // char(30) pads
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("yelb: postgres: read the votes: %w", err)
	}
	votes := make([]Vote, len(restaurants))
	for i, r := range restaurants {
		n, ok := counts[r]
		if !ok {
			return nil, fmt.Errorf("yelb: postgres: no row for %q in restaurants", r)
		}
		votes[i] = Vote{Name: r, Value: n}
	}
	return votes, nil
}

// Vote implements [VoteStore]: the original's UPDATE and read back, in one
// statement, so that the count returned is the one this vote made.
func (p *Postgres) Vote(ctx context.Context, restaurant string) (int64, error) {
	if !IsRestaurant(restaurant) {
		return 0, fmt.Errorf("%w %q", ErrUnknownRestaurant, restaurant)
	}
	if err := p.ensureSchema(ctx); err != nil {
		return 0, err
	}
	var n int64
	err := p.pool.QueryRow(ctx, "UPDATE restaurants SET count = count + 1 WHERE name = $1 RETURNING count", restaurant).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%w %q: no row in restaurants", ErrUnknownRestaurant, restaurant)
	}
	if err != nil {
		return 0, fmt.Errorf("yelb: postgres: vote for %s: %w", restaurant, err)
	}
	return n, nil
}
