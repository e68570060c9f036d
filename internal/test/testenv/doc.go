// Package testenv starts real components (Consul, Vault, SPIRE, Jaeger,
// Postgres, Redis, Prometheus) for tests.
//
// The binaries are built from the versions pinned in internal/tools by
// scripts/build-tools.sh into a cache outside the repository:
//
//	${ZTN_TOOLS_CACHE:-$HOME/.cache/ztn/tools}/<name>-<version>-<key>/<name>
//
// ToolPath computes the same path (see scripts/tool-path.sh). An environment
// variable overrides it per tool: ZTN_CONSUL_BIN, ZTN_VAULT_BIN,
// ZTN_SPIRE_SERVER_BIN, ZTN_SPIRE_AGENT_BIN, ZTN_GRPCURL_BIN, ZTN_JAEGER_BIN.
//
// Postgres and Redis come from Debian packages instead (postgresql,
// redis-server; internal/tools/debian-packages.txt, installed by
// scripts/deps.sh); ZTN_POSTGRES_BIN and ZTN_REDIS_SERVER_BIN override where
// they are found. They run with TLS only and client-certificate
// authentication against a CA the test gives ([ServerTLS]). Prometheus
// (package prometheus; ZTN_PROMETHEUS_BIN) scrapes plain-HTTP /metrics
// endpoints on loopback; with Jaeger (OTLP in, query API out) it lets tests
// check, through the servers' own query APIs, that traces and metrics
// arrived.
//
// When a binary is missing a test using it is skipped, unless
// ZTN_REQUIRE_TOOLS is set (to anything but "", "0" or "false"), in which case
// it fails: CI sets it so that a missing build step cannot pass as skipped
// tests.
//
// Every server listens on loopback only, on ports chosen free, with its state
// and log in t.TempDir() (Postgres and Redis: in a directory of their own,
// which Postgres's system user may enter, kept when the test fails). It is
// killed when the test ends; when the test has failed, the last lines of its
// log are written to the test log.
//
// The methods of the servers call t.Fatal on errors, so they must be called
// from the test's goroutine, like t.Fatal itself.
//
// This package uses the standard library only: it talks HTTP to the servers
// itself. Vault v1.21.4 is BUSL-1.1 licensed; running it in tests, as here, is
// permitted non-production use.
package testenv
