package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ztnlabs/ztn/examples/chat/internal/bot"
	"github.com/ztnlabs/ztn/examples/chat/internal/store/pgstore"
	"github.com/ztnlabs/ztn/ztnet"
	"github.com/ztnlabs/ztn/ztnet/ztnenv"
)

// The chat's own settings in mesh mode, besides ztnenv's.
const (
	envKVMount    = "CHAT_KV_MOUNT"    // Vault KV v2 mount of the chat's secrets (default "secret")
	envDBURL      = "CHAT_DB_URL"      // store: Postgres, without credentials: postgres://host:port/chat
	envDBCA       = "CHAT_DB_CA"       // store: PEM file of the CA of Postgres's certificate (default: system roots)
	envDBCreds    = "CHAT_DB_CREDS"    // store: the Vault path of the logins (default "database/creds/chat-store")
	envDBOwner    = "CHAT_DB_OWNER"    // store: the role that owns the tables (default "chat_owner")
	envWeatherURL = "CHAT_WEATHER_URL" // bot: the weather API's https base URL (unset: /weather is not set up)
	envWeatherCA  = "CHAT_WEATHER_CA"  // bot: PEM file of the API's CA (default: system roots)
)

// Where the secrets are in Vault's KV store (mount CHAT_KV_MOUNT).
const (
	kvWebPath, kvWebField = "chat/web", "jwt_signing_key" // chat-web's token signing key (32 bytes or more)
	kvBotPath, kvBotField = "chat/bot", "weather_api_key" // chat-bot's weather API key
)

var modeService = map[string]string{"web": svcWeb, "store": svcStore, "bot": svcBot, "gateway": svcGateway}

// runMesh runs one service of the chat (mode: web, store, bot, gateway) in
// the mesh getenv configures (ztnenv: Consul and Vault), until ctx ends.
// The service's name is fixed by mode; ZTN_SERVICE, if set, must agree.
func runMesh(ctx context.Context, mode string, getenv func(string) string, rc roleConfig) error {
	name, ok := modeService[mode]
	if !ok {
		return fmt.Errorf("unknown mode %q", mode)
	}
	if s := getenv(ztnenv.EnvService); s != "" && s != name {
		return fmt.Errorf("-mode %s runs %s, but %s=%s", mode, name, ztnenv.EnvService, s)
	}
	if rc.addr == "" {
		rc.addr = "127.0.0.1:0"
		if mode == "gateway" {
			rc.addr = "127.0.0.1:8080"
		}
	}
	if rc.telemetry == nil {
		stop, err := startTelemetry(ctx, getenv, &rc, name)
		if err != nil {
			return err
		}
		defer stop()
	}
	env, err := ztnenv.New(getenv, ztnenv.WithLogger(rc.logger), ztnenv.WithServiceOptions(rc.providersOf(name).ztnOptions()...))
	if err != nil {
		return err
	}
	defer env.Close()
	svc, err := env.Service(ctx, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(rc.out, "%s: identity %s\n", name, svc.ID())
	vc, err := newVaultClient(getenv)
	if err != nil {
		return err
	}
	mount := or(getenv(envKVMount), "secret")
	switch mode {
	case "gateway":
		return serveGateway(ctx, svc, rc)
	case "web":
		key, err := readSecret(ctx, vc, mount, kvWebPath, kvWebField)
		if err != nil {
			return err
		}
		return serveWeb(ctx, svc, []byte(key), rc)
	case "bot":
		var weather bot.Weatherer
		if u := getenv(envWeatherURL); u != "" {
			key, err := readSecret(ctx, vc, mount, kvBotPath, kvBotField)
			if err != nil {
				return err
			}
			roots, err := certPool(getenv(envWeatherCA))
			if err != nil {
				return err
			}
			client, err := newEgressClient(u, roots)
			if err != nil {
				return err
			}
			wc, err := bot.NewWeatherClient(u, key, client)
			if err != nil {
				return err
			}
			weather = wc
			fmt.Fprintf(rc.out, "%s: /weather goes out to %s through the egress client (that host only)\n", name, u)
		} else {
			fmt.Fprintf(rc.out, "%s: %s is not set: /weather answers that it is not set up\n", name, envWeatherURL)
		}
		return runBot(ctx, svc, weather, rc)
	default: // store
		return runStore(ctx, getenv, vc, svc, rc)
	}
}

// runStore opens Postgres with logins from Vault and serves it as
// chat-store.
func runStore(ctx context.Context, getenv func(string) string, vc *vaultapi.Client, svc *ztnet.Service, rc roleConfig) error {
	dbURL := getenv(envDBURL)
	if dbURL == "" {
		return fmt.Errorf("%s is not set (postgres://host:port/database, without credentials)", envDBURL)
	}
	roots, err := certPool(getenv(envDBCA))
	if err != nil {
		return err
	}
	logins := &dbLogins{vc: vc, path: or(getenv(envDBCreds), "database/creds/chat-store"), out: rc.out, logger: rc.logger}
	if err := logins.fetch(ctx); err != nil {
		return err
	}
	st, err := pgstore.Open(ctx, dbURL, logins.current, pgstore.WithOwnerRole(or(getenv(envDBOwner), "chat_owner")),
		pgstore.WithTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}), pgstore.WithLogger(rc.logger),
		pgstore.WithTracerProvider(rc.providersOf(svcStore).tracer))
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kept := make(chan struct{})
	go func() { defer close(kept); logins.keep(ctx, st.Rotate) }()
	defer func() { cancel(); <-kept }()
	return serveStore(ctx, svc, st, rc)
}

// certPool reads a PEM file of CA certificates; "" means the system's.
func certPool(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("chat: %s holds no PEM certificate", path)
	}
	return p, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
