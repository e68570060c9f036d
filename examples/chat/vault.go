package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ztnlabs/ztn/examples/chat/internal/store/pgstore"
)

// newVaultClient returns a client of the Vault that getenv names
// (VAULT_ADDR, VAULT_TOKEN: the same token the service's certificates come
// with). Its TLS settings (VAULT_CACERT, ...) come from the process
// environment, as vault/api reads them.
func newVaultClient(getenv func(string) string) (*vaultapi.Client, error) {
	cfg := vaultapi.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("chat: vault: %w", cfg.Error)
	}
	cfg.Address = getenv("VAULT_ADDR")
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("chat: vault: %w", err)
	}
	c.SetToken(getenv("VAULT_TOKEN"))
	return c, nil
}

// readSecret reads one field of a KV v2 secret (mount, path) as a string.
// Its errors name the secret and field, never a value.
func readSecret(ctx context.Context, vc *vaultapi.Client, mount, path, field string) (string, error) {
	s, err := vc.KVv2(mount).Get(ctx, path)
	if err != nil {
		return "", fmt.Errorf("chat: vault: read %s/%s: %w", mount, path, err)
	}
	v, ok := s.Data[field].(string)
	if !ok || v == "" {
		return "", fmt.Errorf("chat: vault: %s/%s has no field %q (a non-empty string)", mount, path, field)
	}
	return v, nil
}

// dbLogins are chat-store's Postgres credentials from Vault's database
// secrets engine (path: "<mount>/creds/<role>"): Vault creates a Postgres
// user for each lease and drops it when the lease ends. keep renews the
// lease while Vault extends it; when the role's max_ttl caps it (or renewal
// fails), it takes a new login and calls rotate (pgstore.Store.Rotate),
// with half a lease still left for requests in flight on the old one.
type dbLogins struct {
	vc     *vaultapi.Client
	path   string
	out    io.Writer
	logger *slog.Logger

	cur   atomic.Pointer[pgstore.Credentials]
	lease *vaultapi.Secret // the current one; keep's alone after the first fetch
}

// fetch takes a new login from Vault.
func (d *dbLogins) fetch(ctx context.Context) error {
	s, err := d.vc.Logical().ReadWithContext(ctx, d.path)
	if err != nil {
		return fmt.Errorf("chat: vault: read %s: %w", d.path, err)
	}
	if s == nil || s.LeaseID == "" || s.LeaseDuration <= 0 {
		return fmt.Errorf("chat: vault: %s gave no lease", d.path)
	}
	user, _ := s.Data["username"].(string)
	password, _ := s.Data["password"].(string)
	if user == "" || password == "" {
		return fmt.Errorf("chat: vault: %s gave no username and password", d.path)
	}
	d.cur.Store(&pgstore.Credentials{User: user, Password: password})
	d.lease = s
	fmt.Fprintf(d.out, "chat-store: Postgres login %s from Vault (lease %v)\n", user, time.Duration(s.LeaseDuration)*time.Second)
	return nil
}

// current is the pgstore.CredentialsFunc.
func (d *dbLogins) current(context.Context) (pgstore.Credentials, error) {
	c := d.cur.Load()
	if c == nil {
		return pgstore.Credentials{}, errors.New("chat: no Postgres login from Vault yet")
	}
	return *c, nil
}

// keep renews and replaces the login until ctx ends.
func (d *dbLogins) keep(ctx context.Context, rotate func()) {
	full := time.Duration(d.lease.LeaseDuration) * time.Second
	left := full
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(left / 2):
		}
		r, err := d.vc.Sys().RenewWithContext(ctx, d.lease.LeaseID, int(full/time.Second))
		if err == nil && time.Duration(r.LeaseDuration)*time.Second >= full {
			left = full
			continue
		}
		if err != nil && ctx.Err() == nil {
			d.logger.Warn("chat-store: renewing the Postgres login failed; taking a new one", "error", err)
		}
		// The lease cannot run a full term more: replace it now, while the
		// old login still has time for the requests in flight.
		for ctx.Err() == nil {
			if err := d.fetch(ctx); err != nil {
				d.logger.Warn("chat-store: a new Postgres login failed; trying again", "error", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
				continue
			}
			rotate()
			break
		}
		full = time.Duration(d.lease.LeaseDuration) * time.Second
		left = full
	}
}
