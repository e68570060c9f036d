package yelb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// AppServer is yelb-appserver's HTTP API, the original Sinatra app's:
//
//	GET /api/getvotes      [{"name":"outback","value":N},{"name":"bucadibeppo","value":N},
//	                        {"name":"ihop","value":N},{"name":"chipotle","value":N}]
//	GET /api/<restaurant>  one vote (ihop, chipotle, outback, bucadibeppo); the new count
//	GET /api/pageviews     one page view; the count so far
//	GET /api/hostname      this instance's host name, a bare word
//	GET /api/getstats      one page view; {"hostname":"h","pageviews":N}
//
// Every answer, errors included, carries one "Access-Control-Allow-Origin:
// *". A path may start with several slashes (the original UI asks for
// //api/...). Only pageviews and getstats count page views. An unknown
// /api/<x> is 404 (never a vote), and so is a path with an encoded slash
// ("/api%2Fihop" is one segment, not /api/ihop); a method other than GET (or a CORS
// preflight's OPTIONS) is 405. When the vote store fails, getvotes and the
// votes answer 500 while pageviews, hostname and getstats work, and the
// reverse when the page-view counter fails; each recovers with its store,
// without a restart.
type AppServer struct {
	votes    VoteStore
	views    PageViewCounter
	hostname string
	logger   *slog.Logger
	timeout  time.Duration
}

// NewAppServer returns the API over the given stores. hostname is what
// /api/hostname and /api/getstats answer, to tell the replicas apart; ""
// means the machine's host name. It must be a bare word (no spaces or
// control characters).
func NewAppServer(votes VoteStore, views PageViewCounter, hostname string, opts ...Option) (*AppServer, error) {
	if votes == nil || views == nil {
		return nil, errors.New("yelb: app server: a vote store and a page-view counter are required")
	}
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("yelb: app server: %w", err)
		}
		hostname = h
	}
	if strings.IndexFunc(hostname, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return nil, fmt.Errorf("yelb: app server: hostname %q is not a bare word", hostname)
	}
	cfg := newConfig(opts)
	return &AppServer{votes: votes, views: views, hostname: hostname, logger: cfg.logger, timeout: cfg.timeout}, nil
}

// Hostname returns the name the server answers /api/hostname with.
func (s *AppServer) Hostname() string { return s.hostname }

// apiName returns x for a path /api/x, //api/x, ... An encoded slash
// ("/api%2Fihop") is part of a segment, not a separator: such a path is no
// API path.
func apiName(u *url.URL) (string, bool) {
	if encodedSlash(u) {
		return "", false
	}
	name, ok := strings.CutPrefix(strings.TrimLeft(u.Path, "/"), "api/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

// ServeHTTP implements [http.Handler].
func (s *AppServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cache-Control", "no-store") // every GET but hostname changes something
	name, ok := apiName(r.URL)
	if !ok || !(IsRestaurant(name) || name == "getvotes" || name == "pageviews" || name == "hostname" || name == "getstats") {
		writeText(w, http.StatusNotFound, "not found")
		return
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodOptions: // a CORS preflight, as the original answers it
		h.Set("Allow", "GET, OPTIONS")
		h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Cache-Control, Accept")
		w.WriteHeader(http.StatusOK)
		return
	default:
		h.Set("Allow", "GET, OPTIONS")
		writeText(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	switch name {
	case "getvotes":
		votes, err := s.votes.Votes(ctx)
		if err != nil {
			s.fail(w, r, "votes", err)
			return
		}
		writeJSON(w, votes)
	case "pageviews":
		n, err := s.views.PageView(ctx)
		if err != nil {
			s.fail(w, r, "page views", err)
			return
		}
		writeJSON(w, n)
	case "hostname":
		writeText(w, http.StatusOK, s.hostname)
	case "getstats":
		n, err := s.views.PageView(ctx)
		if err != nil {
			s.fail(w, r, "page views", err)
			return
		}
		writeJSON(w, struct {
			Hostname  string `json:"hostname"`
			PageViews int64  `json:"pageviews"`
		}{s.hostname, n})
	default: // a restaurant
		n, err := s.votes.Vote(ctx, name)
		if err != nil {
			s.fail(w, r, "votes", err)
			return
		}
		writeJSON(w, n)
	}
}

// fail answers 500 naming the component that failed; the error goes to the
// log.
func (s *AppServer) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.logger.Error("yelb: app server: "+what+" unavailable", "path", r.URL.Path, "err", err)
	writeText(w, http.StatusInternalServerError, what+" unavailable")
}

func writeJSON(w http.ResponseWriter, v any) {
	var b []byte
	switch v := v.(type) {
	case int64:
		b = strconv.AppendInt(nil, v, 10)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			writeText(w, http.StatusInternalServerError, "internal error")
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(text)))
	w.WriteHeader(code)
	_, _ = w.Write([]byte(text))
}
