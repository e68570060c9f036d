package testenv_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// TestPostgresPasswordAuth: the users PostgresPasswordAuth names (one by
// name, the others by role membership) log in with their password over TLS
// only; a wrong password, plain TCP and everyone else without a certificate
// are refused.
func TestPostgresPasswordAuth(t *testing.T) {
	ca := testenv.NewTestCA(t, "db CA")
	srv := testenv.Postgres(t, ca.ServerTLS(t), testenv.PostgresDatabase("appdb", "app"),
		testenv.PostgresPasswordAuth("admin", "+logins"))
	srv.Exec(`CREATE ROLE admin LOGIN PASSWORD 'admin-secret';
		CREATE ROLE logins NOLOGIN;
		CREATE ROLE member LOGIN PASSWORD 'member-secret' IN ROLE logins;
		CREATE ROLE outsider LOGIN PASSWORD 'outsider-secret'`)
	trustServer := testenv.ClientTLS(t, ca, nil, "")
	login := func(user, password string, tlsCfg *tls.Config) error {
		cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://%s@%s/appdb", user, srv.Addr))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Password, cfg.TLSConfig, cfg.Fallbacks = password, tlsCfg, nil
		c, err := pgx.ConnectConfig(t.Context(), cfg)
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		var got string
		if err := c.QueryRow(t.Context(), "SELECT current_user").Scan(&got); err != nil {
			return err
		}
		if got != user {
			return fmt.Errorf("current_user %q", got)
		}
		return nil
	}
	for _, ok := range []struct{ user, password string }{{"admin", "admin-secret"}, {"member", "member-secret"}} {
		if err := login(ok.user, ok.password, trustServer); err != nil {
			t.Errorf("%s with its password over TLS: %v", ok.user, err)
		}
	}
	refused := []struct {
		name, user, password string
		tls                  *tls.Config
		want                 string
	}{
		{"a wrong password", "admin", "guess", trustServer, "password authentication failed"},
		{"no TLS", "admin", "admin-secret", nil, "no encryption"},
		{"a user not named, without a certificate", "outsider", "outsider-secret", trustServer, "certificate"},
	}
	for _, tc := range refused {
		err := login(tc.user, tc.password, tc.tls)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	if err := login("app", "", testenv.ClientTLS(t, ca, ca, "app")); err != nil {
		t.Errorf("the certificate user: %v", err)
	}
}
