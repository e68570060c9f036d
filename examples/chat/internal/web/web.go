// Package web is the chat's front end: the page and the HTTP API of
// feathers-chat (github.com/feathersjs/feathers-chat), on any
// [store.Store].
//
// # API
//
//	POST   /authentication  {"strategy":"local","email":..,"password":..} -> 201 {accessToken, authentication, user}
//	                        {"strategy":"jwt","accessToken":..} -> 201, the same for a token still valid
//	DELETE /authentication  (JWT) logs out: 200, and this server's streams of the token end
//	POST   /users           {"email":..,"password":..,"avatar":..?} -> 201 user; no token needed
//	GET    /users           (JWT) find: ?$sort[email]=1&$limit=..&$skip=..&id=..
//	GET    /users/{id}      (JWT); PATCH and DELETE only on your own user
//	GET    /messages        (JWT) find: ?$sort[createdAt]=-1&$limit=25&$skip=..&userId=..
//	POST   /messages        (JWT) {"text":..} -> 201 {id, text, userId, createdAt, user}
//	GET    /messages/{id}   (JWT); PATCH {"text":..} and DELETE only on your own messages
//	GET    /events          (JWT as Bearer header or ?token=) server-sent events
//	GET    /                the page
//
// A find answers {"total","limit","skip","data"}: 10 records unless
// $limit says otherwise, never more than 50 ($limit=100, or any larger
// number, is served, and answered, as 50); $skip goes up to 2^31-1 and a
// find sorts by at most [store.MaxSortFields] fields. Message text must
// not be blank nor hold a NUL and is cut to [store.MaxTextLen] characters;
// emails are checked by [store.CheckEmail]. Passwords are stored as bcrypt
// hashes and never returned.
//
// A body is one JSON object of at most 64 KiB (more is a 413), sent as
// application/json or with no Content-Type (any other is a 415), whose
// keys are the API's, spelled exactly and given once (400 otherwise).
//
// Errors are feathers' JSON bodies, e.g.
// {"name":"NotAuthenticated","message":"Not authenticated","code":401,"className":"not-authenticated"};
// a method a path does not have is a 405 (PUT anywhere), and is checked
// before the token.
//
// # Tokens
//
// Access tokens are JWTs signed with HS256 under the key given to [New]
// (the caller reads it from its secret store), valid for a day, with the
// user ID as subject. Tokens with another algorithm (including "none"),
// another key, a bad signature or past their expiry are refused with 401.
//
// # Real time
//
// GET /events streams "users created" and "messages created" events
// (data: the record as JSON) to authenticated clients only; [Server.Run]
// follows the store, so records created through any front end or by the
// bot reach every stream. Each stream starts with a "connected" event and
// ends with an "expired" event when its token expires.
//
// # Use
//
//	srv, err := web.New(st, key)
//	if err != nil {
//		return err
//	}
//	go srv.Run(ctx)
//	return http.Serve(l, srv)
package web

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

//go:embed static
var staticFiles embed.FS

// Server is the chat's HTTP front end; it is an [http.Handler]. Make one
// with [New] and call [Server.Run] to push new records to event streams.
type Server struct {
	st        store.Store
	key       []byte
	cfg       config
	hub       *hub
	mux       *http.ServeMux
	dummyHash []byte
	following chan struct{} // closed once Run knows where to follow from
	startOnce sync.Once
}

// New returns a front end on st whose tokens are signed with signingKey
// (at least [MinKeyLen] bytes; the slice is copied).
func New(st store.Store, signingKey []byte, opts ...Option) (*Server, error) {
	if st == nil {
		return nil, fmt.Errorf("chat web: no store")
	}
	if len(signingKey) < MinKeyLen {
		return nil, fmt.Errorf("chat web: signing key is %d bytes, want at least %d", len(signingKey), MinKeyLen)
	}
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.bcryptCost < bcrypt.MinCost || cfg.bcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("chat web: bcrypt cost %d out of range", cfg.bcryptCost)
	}
	if cfg.tokenLifetime <= 0 || cfg.keepAlive <= 0 {
		return nil, fmt.Errorf("chat web: token lifetime and keep-alive must be positive")
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("no such user"), cfg.bcryptCost)
	if err != nil {
		return nil, fmt.Errorf("chat web: %w", err)
	}
	s := &Server{
		st:        st,
		key:       append([]byte(nil), signingKey...),
		cfg:       cfg,
		hub:       newHub(cfg.streamBuffer),
		mux:       http.NewServeMux(),
		dummyHash: dummy,
		following: make(chan struct{}),
	}
	static, _ := fs.Sub(staticFiles, "static")
	files := http.FileServerFS(static)
	s.mux.HandleFunc("/authentication", s.handleAuthentication)
	s.mux.HandleFunc("/users", s.handleUsers)
	s.mux.HandleFunc("/users/{id}", s.handleUser)
	s.mux.HandleFunc("/messages", s.handleMessages)
	s.mux.HandleFunc("/messages/{id}", s.handleMessage)
	s.mux.HandleFunc("/events", s.handleEvents)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "Method %s is not supported by this endpoint.", r.Method))
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name == "" {
			name = "index.html"
		}
		if _, err := fs.Stat(static, name); err != nil {
			s.writeError(w, r, errorf(http.StatusNotFound, "Page not found"))
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' https: http: data:; base-uri 'none'; form-action 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
	return s, nil
}

// ServeHTTP implements [http.Handler].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// allowed returns the methods a path has, for a 405's Allow header.
func allowed(path string) string {
	switch {
	case path == "/authentication":
		return "POST, DELETE"
	case path == "/users", path == "/messages":
		return "GET, POST"
	case strings.HasPrefix(path, "/users/"), strings.HasPrefix(path, "/messages/"):
		return "GET, PATCH, DELETE"
	default:
		return "GET, HEAD"
	}
}
