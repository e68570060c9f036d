package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// Auth logs in to Vault. Its one method is the one of vault/api's
// api.AuthMethod, so every helper of vault/api/auth/... (AWS, GCP, Azure,
// LDAP, ...) is an Auth as it is.
//
// Login is called when the Vault source starts and again each time the token
// must be replaced: its lease ended, or Vault rejected it. client has the
// source's address, TLS settings and namespace and no token; Login must not
// set one on it. It returns the login response, whose Auth.ClientToken is the
// token to use.
type Auth interface {
	Login(ctx context.Context, client *api.Client) (*api.Secret, error)
}

// Token authenticates with a fixed token. Login looks the token up
// (auth/token/lookup-self, allowed by Vault's default policy) to learn
// whether and for how long it can be renewed. A token that cannot be renewed
// past its maximum lifetime is not replaced: when it expires, issuance fails
// until the process is given a new one (use [TokenFile] for tokens that
// an agent rewrites).
func Token(token string) Auth {
	return &tokenAuth{what: "token", token: func() (string, error) { return token, nil }}
}

// TokenFile authenticates with the token in the file at path (leading
// and trailing white space ignored), read again at every login: a token
// rewritten by Vault Agent or an init container is picked up when the
// previous one ends or is rejected.
func TokenFile(path string) Auth {
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

// AppRole authenticates with AppRole at auth/<mount> (mount "" means
// "approle") with a role ID and a secret ID. For a secret ID read from a
// file or a response-wrapped one, pass vault/api/auth/approle's AppRoleAuth
// itself, which is an Auth.
func AppRole(roleID, secretID, mount string) Auth {
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

// Kubernetes authenticates with Kubernetes auth at auth/<mount> (""
// means "kubernetes") as role, with the service-account token in the file at
// tokenPath ("" means /var/run/secrets/kubernetes.io/serviceaccount/token).
// The file is read again at every login (projected tokens rotate; vault/api's
// helper reads it only once, when created, so a new one is made each time).
func Kubernetes(role, tokenPath, mount string) Auth {
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

// JWT authenticates with JWT/OIDC auth at auth/<mount> ("" means "jwt")
// as role, with the JWT that jwt returns, asked for again at every login.
func JWT(role string, jwt func(ctx context.Context) (string, error), mount string) Auth {
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

// namedAuth is an Auth with a description for logs and errors.
type namedAuth struct {
	what  string
	login func(ctx context.Context, c *api.Client) (*api.Secret, error)
}

func (a *namedAuth) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	return a.login(ctx, c)
}

func (a *namedAuth) String() string { return a.what }

// tokenAuth is Token and TokenFile.
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
