package certs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// VaultAuth logs in to Vault. Its one method is the one of vault/api's
// api.AuthMethod, so every helper of vault/api/auth/... (AWS, GCP, Azure,
// LDAP, ...) is a VaultAuth as it is.
//
// Login is called when the Vault source starts and again each time the token
// must be replaced: its lease ended, or Vault rejected it. client has the
// source's address, TLS settings and namespace and no token; Login must not
// set one on it. It returns the login response, whose Auth.ClientToken is the
// token to use.
type VaultAuth interface {
	Login(ctx context.Context, client *api.Client) (*api.Secret, error)
}

// VaultToken authenticates with a fixed token. Login looks the token up
// (auth/token/lookup-self, allowed by Vault's default policy) to learn
// whether and for how long it can be renewed. A token that cannot be renewed
// past its maximum lifetime is not replaced: when it expires, issuance fails
// until the process is given a new one (use VaultTokenFile for tokens that
// an agent rewrites).
func VaultToken(token string) VaultAuth {
	return &tokenAuth{what: "token", token: func() (string, error) { return token, nil }}
}

// VaultTokenFile authenticates with the token in the file at path (leading
// and trailing white space ignored), read again at every login: a token
// rewritten by Vault Agent or an init container is picked up when the
// previous one ends or is rejected.
func VaultTokenFile(path string) VaultAuth {
	return &tokenAuth{what: "token file " + path, token: func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read token file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("token file %s is empty", path)
		}
		return t, nil
	}}
}

// VaultAppRole authenticates with AppRole at auth/<mount> (mount "" means
// "approle") with a role ID and a secret ID. For a secret ID read from a
// file or a response-wrapped one, pass vault/api/auth/approle's AppRoleAuth
// itself, which is a VaultAuth.
func VaultAppRole(roleID, secretID, mount string) VaultAuth {
	if mount == "" {
		mount = "approle"
	}
	return &namedAuth{what: "approle at auth/" + mount, login: func(ctx context.Context, c *api.Client) (*api.Secret, error) {
		a, err := approle.NewAppRoleAuth(roleID, &approle.SecretID{FromString: secretID}, approle.WithMountPath(mount))
		if err != nil {
			return nil, err
		}
		return a.Login(ctx, c)
	}}
}

// VaultKubernetes authenticates with Kubernetes auth at auth/<mount> (""
// means "kubernetes") as role, with the service-account token in the file at
// tokenPath ("" means /var/run/secrets/kubernetes.io/serviceaccount/token).
// The file is read again at every login (projected tokens rotate; vault/api's
// helper reads it only once, when created, so a new one is made each time).
func VaultKubernetes(role, tokenPath, mount string) VaultAuth {
	if tokenPath == "" {
		tokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	}
	if mount == "" {
		mount = "kubernetes"
	}
	return &namedAuth{what: "kubernetes at auth/" + mount, login: func(ctx context.Context, c *api.Client) (*api.Secret, error) {
		a, err := kubernetes.NewKubernetesAuth(role,
			kubernetes.WithServiceAccountTokenPath(tokenPath), kubernetes.WithMountPath(mount))
		if err != nil {
			return nil, err
		}
		return a.Login(ctx, c)
	}}
}

// VaultJWT authenticates with JWT/OIDC auth at auth/<mount> ("" means "jwt")
// as role, with the JWT that jwt returns, asked for again at every login.
func VaultJWT(role string, jwt func(ctx context.Context) (string, error), mount string) VaultAuth {
	if mount == "" {
		mount = "jwt"
	}
	return &namedAuth{what: "jwt at auth/" + mount, login: func(ctx context.Context, c *api.Client) (*api.Secret, error) {
		if jwt == nil {
			return nil, errors.New("no JWT source")
		}
		token, err := jwt(ctx)
		if err != nil {
			return nil, fmt.Errorf("get JWT: %w", err)
		}
		return c.Logical().WriteWithContext(ctx, "auth/"+mount+"/login", map[string]any{"role": role, "jwt": token})
	}}
}

// namedAuth is a VaultAuth with a description for logs and errors.
type namedAuth struct {
	what  string
	login func(ctx context.Context, c *api.Client) (*api.Secret, error)
}

func (a *namedAuth) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	return a.login(ctx, c)
}

func (a *namedAuth) String() string { return a.what }

// tokenAuth is VaultToken and VaultTokenFile.
type tokenAuth struct {
	what  string
	token func() (string, error)
}

func (a *tokenAuth) String() string { return a.what }

func (a *tokenAuth) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	token, err := a.token()
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, errors.New("empty token")
	}
	r := c.NewRequest(http.MethodGet, "/v1/auth/token/lookup-self")
	r.ClientToken = token
	resp, err := c.RawRequestWithContext(ctx, r)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("look up the token: %w", err)
	}
	s, err := api.ParseSecret(resp.Body)
	if err != nil || s == nil {
		return nil, fmt.Errorf("look up the token: malformed response: %v", err)
	}
	ttl, err := s.TokenTTL()
	if err != nil {
		return nil, fmt.Errorf("look up the token: malformed ttl: %w", err)
	}
	renewable, err := s.TokenIsRenewable()
	if err != nil {
		return nil, fmt.Errorf("look up the token: malformed renewable: %w", err)
	}
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken:   token,
		Renewable:     renewable,
		LeaseDuration: int(ttl / time.Second),
	}}, nil
}

// tokenKeeper logs in, keeps the token alive with vault/api's
// LifetimeWatcher and logs in again when the watcher ends (the token's lease
// cannot be extended any more) or Vault rejects the token.
type tokenKeeper struct {
	client *api.Client // the source's client: the token is set here
	login  *api.Client // same settings, no token: for Login
	auth   VaultAuth
	what   string
	log    *slog.Logger
	kicks  chan struct{} // capacity 1: a request was denied
	bo     backoff
	logins atomic.Int64 // successful logins, for tests

	mu       sync.Mutex
	secret   *api.Secret
	loggedIn time.Time
}

func newTokenKeeper(client *api.Client, auth VaultAuth, log *slog.Logger, minBackoff, maxBackoff time.Duration) (*tokenKeeper, error) {
	login, err := client.Clone()
	if err != nil {
		return nil, fmt.Errorf("certs: vault: %w", err)
	}
	login.ClearToken()
	if ns := client.Namespace(); ns != "" {
		login.SetNamespace(ns)
	}
	what := fmt.Sprintf("%T", auth)
	if s, ok := auth.(fmt.Stringer); ok {
		what = s.String()
	}
	return &tokenKeeper{
		client: client, login: login, auth: auth, what: what, log: log,
		kicks: make(chan struct{}, 1),
		bo:    backoff{min: minBackoff, max: maxBackoff},
	}, nil
}

// loginOnce logs in and installs the token.
func (k *tokenKeeper) loginOnce(ctx context.Context) error {
	s, err := k.auth.Login(ctx, k.login)
	var re *api.ResponseError
	_, isToken := k.auth.(*tokenAuth)
	switch {
	case err != nil && !isToken && errors.As(err, &re) && re.StatusCode == http.StatusForbidden:
		return fmt.Errorf("certs: vault: login with %s: Vault refused the login: %s", k.what, vaultMessages(re))
	case err != nil:
		return fmt.Errorf("certs: vault: login with %s: %w", k.what, describeVaultError(k.client.Address(), err))
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return fmt.Errorf("certs: vault: login with %s: Vault returned no token", k.what)
	}
	k.client.SetToken(s.Auth.ClientToken)
	k.mu.Lock()
	k.secret, k.loggedIn = s, time.Now()
	k.mu.Unlock()
	k.logins.Add(1)
	k.log.Info("certs: vault: logged in", "auth", k.what,
		"ttl", time.Duration(s.Auth.LeaseDuration)*time.Second, "renewable", s.Auth.Renewable)
	return nil
}

// kick tells the keeper that Vault denied a request: it checks the token
// and logs in again if Vault no longer accepts it.
func (k *tokenKeeper) kick() {
	select {
	case k.kicks <- struct{}{}:
	default:
	}
}

// run keeps the token alive until ctx is done.
func (k *tokenKeeper) run(ctx context.Context) {
	for {
		reason, leaseEnding := k.watch(ctx)
		if ctx.Err() != nil {
			return
		}
		k.log.Info("certs: vault: logging in again", "auth", k.what, "reason", reason)
		old := k.client.Token()
		for {
			// Never log in more often than the minimum backoff, whatever
			// the tokens' TTLs.
			if !sleepCtx(ctx, k.bo.min-time.Since(k.lastLogin())) {
				return
			}
			err := k.loginOnce(ctx)
			if err == nil {
				k.bo.reset()
				break
			}
			if ctx.Err() != nil {
				return
			}
			wait := k.bo.next(0)
			k.log.Warn("certs: vault: login failed", "auth", k.what, "error", err, "retry_in", wait.Round(time.Millisecond))
			if !sleepCtx(ctx, wait) {
				return
			}
		}
		if leaseEnding && k.client.Token() == old {
			// A fixed token at the end of its life: logging in again gives
			// the same token. Stop watching it; when Vault rejects it,
			// logging in again (rereading a token file) may give a new one.
			k.mu.Lock()
			ttl := time.Duration(k.secret.Auth.LeaseDuration) * time.Second
			k.secret = &api.Secret{Auth: &api.SecretAuth{ClientToken: old}}
			k.mu.Unlock()
			k.log.Warn("certs: vault: the token cannot be renewed any more and no new one was given; issuance fails once it expires",
				"auth", k.what, "expires_in", ttl)
		}
	}
}

func (k *tokenKeeper) lastLogin() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.loggedIn
}

// sleepCtx waits d (if positive) and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// watch returns when the current token must be replaced, with the reason
// and whether it is the end of the token's lease, or when ctx is done.
func (k *tokenKeeper) watch(ctx context.Context) (reason string, leaseEnding bool) {
	k.mu.Lock()
	secret := k.secret
	k.mu.Unlock()

	var done <-chan error
	var renewed <-chan *api.RenewOutput
	if secret.Auth.LeaseDuration > 0 { // tokens without a TTL (root tokens) never need renewing
		w, err := k.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{
			Secret:        secret,
			RenewBehavior: api.RenewBehaviorIgnoreErrors,
		})
		if err != nil {
			return "lifetime watcher: " + err.Error(), false
		}
		var wg sync.WaitGroup
		wg.Go(w.Start)
		defer func() { w.Stop(); wg.Wait() }()
		done, renewed = w.DoneCh(), w.RenewCh()
	}
	for {
		select {
		case <-ctx.Done():
			return "", false
		case err := <-done:
			if err != nil {
				return "token renewal ended: " + err.Error(), true
			}
			return "token lease is ending", true
		case r := <-renewed:
			if r != nil && r.Secret != nil && r.Secret.Auth != nil {
				k.log.Debug("certs: vault: token renewed", "auth", k.what,
					"ttl", time.Duration(r.Secret.Auth.LeaseDuration)*time.Second)
			}
		case <-k.kicks:
			// Denied: an expired or revoked token, or a policy that does not
			// allow the request. Only the first calls for a new login.
			lctx, cancel := context.WithTimeout(ctx, k.client.ClientTimeout())
			_, err := k.client.Auth().Token().LookupSelfWithContext(lctx)
			cancel()
			var re *api.ResponseError
			if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
				return "Vault rejects the token", false
			}
		}
	}
}
