package vault

import (
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Defaults of [Config].
const (
	DefaultMount          = "pki"
	DefaultBundleRefresh  = time.Minute
	DefaultRequestTimeout = 10 * time.Second
	// DefaultRootRetention is how long a root that left the mount stays
	// trusted when the role's max_ttl cannot be read.
	DefaultRootRetention = 24 * time.Hour
)

// Config configures [New]. Service and TrustDomain are required;
// everything else has a default.
type Config struct {
	// Service is the service's name; its SPIFFE ID is
	// spiffe://<TrustDomain>/ns/default/dc/<Datacenter>/svc/<Service>.
	Service     string
	TrustDomain spiffeid.TrustDomain
	// Datacenter defaults to "dc1".
	Datacenter string

	// Address is Vault's URL. Default: VAULT_ADDR, else vault/api's default
	// (https://127.0.0.1:8200). Likewise the TLS settings default to
	// VAULT_CACERT, VAULT_CLIENT_CERT, ... (vault/api's own environment).
	Address string
	// AllowHTTP lets Address be a plain http:// URL to a host other than
	// this machine. Without it New refuses one: over plain HTTP anyone
	// on the path can read the Vault token and inject a root into the trust
	// bundle. Loopback addresses (a dev server) need no permission.
	AllowHTTP bool
	// TLS, if not nil, replaces the TLS settings from the environment.
	TLS *api.TLSConfig
	// Namespace is the Vault Enterprise namespace (default VAULT_NAMESPACE).
	Namespace string
	// Auth is how to log in. Default: [Token] with VAULT_TOKEN.
	Auth Auth
	// RequestTimeout bounds each request to Vault (default 10s). Failed
	// requests are not retried by the client: the [certs.Rotator] retries the
	// issuance with backoff.
	RequestTimeout time.Duration

	// Mount is the PKI secrets engine's path (default "pki").
	Mount string
	// Role is the PKI role that signs (default: Service). It must allow
	// exactly this service's SPIFFE ID as a URI SAN (see [Bootstrap]).
	Role string
	// TTL is the lifetime asked for each certificate (default: the role's
	// ttl). Vault caps it at the role's max_ttl.
	TTL time.Duration
	// CommonName, if set, is asked as the certificate's subject common name,
	// besides the SPIFFE ID, for servers that name a client by it, such as
	// Postgres's "cert" authentication (the CN is the database user). The
	// role must allow it and keep it out of the SANs: Bootstrap's roles do
	// for the service's own name with [BootstrapConfig].CommonNames. Default:
	// no common name.
	CommonName string

	// BundleRefresh is how often the mount's issuers are read for the trust
	// bundle (default 1m). The bundle is also read after every issuance.
	BundleRefresh time.Duration
	// RootRetention is how long a root that no longer appears in the mount's
	// issuers is still trusted, so that peers' leaves issued under it keep
	// verifying until they expire (spec: drop an old root only max_ttl after
	// the switch). Default: the role's max_ttl if the token may read the role,
	// else 24h; never past the root's own NotAfter. Roots of revoked issuers
	// are dropped at once.
	RootRetention time.Duration
}
