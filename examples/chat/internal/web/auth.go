package web

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

// The JWT: HS256 only, a day long, the header's typ "access" and the
// audience as feathers-chat's jwtOptions have them; sub is the user ID.
const (
	tokenIssuer    = "chat-web"
	tokenAudience  = "chat"
	tokenAlgorithm = "HS256"
	// MinKeyLen is the shortest signing key [New] accepts: 32 bytes, the
	// size of the HS256 hash.
	MinKeyLen = 32
)

// claims are what an access token says.
type claims struct {
	UserID int64
	ID     string // jti
	Expiry time.Time
	raw    jwt.RegisteredClaims
}

func (s *Server) issueToken(userID int64) (string, error) {
	now := s.cfg.now()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(userID, 10),
		Issuer:    tokenIssuer,
		Audience:  jwt.ClaimStrings{tokenAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.tokenLifetime)),
		ID:        hex.EncodeToString(jti),
	})
	t.Header["typ"] = "access"
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("chat web: sign token: %w", err)
	}
	return signed, nil
}

// verifyToken checks a token's algorithm (HS256, so never "none"),
// signature, issuer, audience and expiry.
func (s *Server) verifyToken(token string) (claims, error) {
	var rc jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &rc, func(*jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{tokenAlgorithm}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(tokenAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.cfg.now),
	)
	if err != nil {
		return claims{}, errorf(http.StatusUnauthorized, "invalid token: %v", err)
	}
	id, err := strconv.ParseInt(rc.Subject, 10, 64)
	if err != nil || id <= 0 {
		return claims{}, errorf(http.StatusUnauthorized, "invalid token: bad subject")
	}
	return claims{UserID: id, ID: rc.ID, Expiry: rc.ExpiresAt.Time, raw: rc}, nil
}

// bearer returns the token of an Authorization header ("Bearer <jwt>", or
// the bare token as feathers also accepts), or "".
func bearer(r *http.Request) string {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return h
}

// authenticate verifies the request's JWT; no token or a bad one is 401.
func (s *Server) authenticate(r *http.Request) (claims, string, error) {
	token := bearer(r)
	if token == "" {
		return claims{}, "", errorf(http.StatusUnauthorized, "Not authenticated")
	}
	c, err := s.verifyToken(token)
	return c, token, err
}

// authResult is the answer of /authentication, as feathers gives it.
type authResult struct {
	AccessToken    string         `json:"accessToken"`
	Authentication map[string]any `json:"authentication"`
	User           store.User     `json:"user"`
}

type authRequest struct {
	Strategy    string `json:"strategy"`
	Email       string `json:"email"`
	Password    string `json:"password"`
	AccessToken string `json:"accessToken"`
}

func (s *Server) handleAuthentication(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		var req authRequest
		if err := decodeBody(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		switch req.Strategy {
		case "local":
			s.loginLocal(w, r, req)
		case "jwt":
			s.loginJWT(w, r, req.AccessToken, http.StatusCreated)
		case "":
			s.writeError(w, r, errorf(http.StatusUnauthorized, "Invalid authentication information (no `strategy` set)"))
		default:
			s.writeError(w, r, errorf(http.StatusUnauthorized, "Invalid authentication information (strategy not allowed in authStrategies)"))
		}
	case http.MethodDelete:
		token := bearer(r)
		if token == "" {
			s.writeError(w, r, errorf(http.StatusUnauthorized, "Not authenticated"))
			return
		}
		if s.loginJWT(w, r, token, http.StatusOK) {
			// The token stays valid until it expires (it is stateless, as
			// in feathers); logging out ends this server's streams of it.
			c, _ := s.verifyToken(token)
			s.hub.logout(c.ID)
		}
	default:
		s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "Method %s is not supported by this endpoint.", r.Method))
	}
}

func (s *Server) loginLocal(w http.ResponseWriter, r *http.Request, req authRequest) {
	if req.Email == "" || req.Password == "" {
		s.writeError(w, r, errorf(http.StatusUnauthorized, "Invalid login"))
		return
	}
	// An email no store keeps (a NUL, say) is no user's: it is not asked for.
	u, hash, err := store.User{}, "", store.CheckEmail(req.Email)
	if err == nil {
		u, hash, err = s.st.Credentials(r.Context(), req.Email)
	}
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(req.Password))
		s.writeError(w, r, errorf(http.StatusUnauthorized, "Invalid login"))
		return
	case err != nil:
		s.writeError(w, r, err)
		return
	}
	if hash == "" || bcrypt.CompareHashAndPassword([]byte(hash), []byte(req.Password)) != nil {
		s.writeError(w, r, errorf(http.StatusUnauthorized, "Invalid login"))
		return
	}
	token, err := s.issueToken(u.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, authResult{
		AccessToken:    token,
		Authentication: map[string]any{"strategy": "local"},
		User:           u,
	})
}

// loginJWT answers with the user of a valid token (feathers'
// reAuthenticate and logout both do); it reports whether the token was good.
func (s *Server) loginJWT(w http.ResponseWriter, r *http.Request, token string, code int) bool {
	if token == "" {
		s.writeError(w, r, errorf(http.StatusUnauthorized, "No access token"))
		return false
	}
	c, err := s.verifyToken(token)
	if err != nil {
		s.writeError(w, r, err)
		return false
	}
	u, err := s.st.User(r.Context(), c.UserID)
	if errors.Is(err, store.ErrNotFound) {
		err = errorf(http.StatusUnauthorized, "the token's user does not exist")
	}
	if err != nil {
		s.writeError(w, r, err)
		return false
	}
	writeJSON(w, code, authResult{
		AccessToken: token,
		Authentication: map[string]any{"strategy": "jwt", "accessToken": token, "payload": map[string]any{
			"sub": c.raw.Subject, "iss": c.raw.Issuer, "aud": c.raw.Audience,
			"iat": c.raw.IssuedAt.Unix(), "exp": c.raw.ExpiresAt.Unix(), "jti": c.raw.ID,
		}},
		User: u,
	})
	return true
}
