package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ztnlabs/ztn/certs"
)

// newDBIdentity is the app server's identity for Postgres and Redis, apart
// from its mesh identity: its SPIFFE ID in the trust domain of dbPKI
// (TRUST_DOMAIN@MOUNT) and the common name yelb-appserver (Postgres's
// database user), signed by the role env.role names for the app server in
// that Vault PKI mount, and renewed like the mesh identity. The databases
// trust that mount's CA only, and only the app server's policy may sign
// with that role: unlike the back end's mesh PKI, whose every service could
// otherwise reach Redis (Redis 7 cannot map a certificate to a user), no
// other certificate gets in. Its trust bundle, the mount's roots, is what
// the app server verifies the databases' server certificates with.
func newDBIdentity(ctx context.Context, env meshEnv, dbPKI string, logger *slog.Logger) (*certs.Rotator, error) {
	td, mount, err := parseTDMount(dbPKI)
	if err != nil {
		return nil, fmt.Errorf("yelb: -db-pki %q: %w", dbPKI, err)
	}
	return vaultIdentity(ctx, env, td, mount, appName, appName, logger.With("identity", "databases"))
}
