package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/ztnlabs/ztn/internal/certsx"
)

// tokenKeeper logs in, keeps the token alive with vault/api's
// LifetimeWatcher and logs in again when the watcher ends (the token's lease
// cannot be extended any more) or Vault rejects the token.
type tokenKeeper struct {
	client *api.Client // the source's client: the token is set here
	login  *api.Client // same settings, no token: for Login
	auth   Auth
	what   string
	log    *slog.Logger
	kicks  chan struct{} // capacity 1: a request was denied
	bo     certsx.Backoff
	logins atomic.Int64 // successful logins, for tests

	mu       sync.Mutex
	secret   *api.Secret
	loggedIn time.Time
}

func newTokenKeeper(client *api.Client, auth Auth, log *slog.Logger, minBackoff, maxBackoff time.Duration) (*tokenKeeper, error) {
	login, err := client.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
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
		bo:    certsx.Backoff{Min: minBackoff, Max: maxBackoff},
	}, nil
}

// loginOnce logs in and installs the token.
func (k *tokenKeeper) loginOnce(ctx context.Context) error {
	s, err := k.auth.Login(ctx, k.login)
	var re *api.ResponseError
	_, isToken := k.auth.(*tokenAuth)
	switch {
	case err != nil && !isToken && errors.As(err, &re) && re.StatusCode == http.StatusForbidden:
		return fmt.Errorf("vault: login with %s: Vault refused the login: %s", k.what, errorMessages(re))
	case err != nil:
		return fmt.Errorf("vault: login with %s: %w", k.what, describeError(k.client.Address(), err))
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return fmt.Errorf("vault: login with %s: Vault returned no token", k.what)
	}
	k.client.SetToken(s.Auth.ClientToken)
	k.mu.Lock()
	k.secret, k.loggedIn = s, time.Now()
	k.mu.Unlock()
	k.logins.Add(1)
	k.log.Info("vault: logged in", "auth", k.what,
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
		k.log.Info("vault: logging in again", "auth", k.what, "reason", reason)
		old := k.client.Token()
		for {
			// Never log in more often than the minimum backoff, whatever
			// the tokens' TTLs.
			if !sleepCtx(ctx, k.bo.Min-time.Since(k.lastLogin())) {
				return
			}
			err := k.loginOnce(ctx)
			if err == nil {
				k.bo.Reset()
				break
			}
			if ctx.Err() != nil {
				return
			}
			wait := k.bo.Next(0)
			k.log.Warn("vault: login failed", "auth", k.what, "error", err, "retry_in", wait.Round(time.Millisecond))
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
			k.log.Warn("vault: the token cannot be renewed any more and no new one was given; issuance fails once it expires",
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
				k.log.Debug("vault: token renewed", "auth", k.what,
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
