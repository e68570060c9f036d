package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

// httpError is an error answered as a feathers error body:
// {"name":"NotAuthenticated","message":"...","code":401,"className":"not-authenticated"}.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

// feathersNames maps a status to feathers' error name and class name.
func feathersNames(code int) (name, class string) {
	switch code {
	case http.StatusBadRequest:
		return "BadRequest", "bad-request"
	case http.StatusUnauthorized:
		return "NotAuthenticated", "not-authenticated"
	case http.StatusForbidden:
		return "Forbidden", "forbidden"
	case http.StatusNotFound:
		return "NotFound", "not-found"
	case http.StatusMethodNotAllowed:
		return "MethodNotAllowed", "method-not-allowed"
	case http.StatusConflict:
		return "Conflict", "conflict"
	case http.StatusRequestEntityTooLarge:
		return "PayloadTooLarge", "payload-too-large"
	case http.StatusUnsupportedMediaType:
		return "UnsupportedMediaType", "unsupported-media-type"
	case http.StatusServiceUnavailable:
		return "Unavailable", "unavailable"
	case http.StatusGatewayTimeout:
		return "Timeout", "timeout"
	default:
		return "GeneralError", "general-error"
	}
}

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// writeError answers err: an [httpError] as it is, a store error by its
// kind, anything else as a 500 that says what failed.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, store.ErrNotFound):
		he = &httpError{http.StatusNotFound, err.Error()}
	case errors.Is(err, store.ErrConflict):
		he = &httpError{http.StatusConflict, err.Error()}
	case errors.Is(err, store.ErrInvalid):
		he = &httpError{http.StatusBadRequest, err.Error()}
	case errors.Is(err, store.ErrUnavailable):
		he = &httpError{http.StatusServiceUnavailable, err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		he = &httpError{http.StatusGatewayTimeout, err.Error()}
	default:
		he = &httpError{http.StatusInternalServerError, err.Error()}
	}
	if he.code >= 500 {
		s.cfg.logger.Error("chat web: request failed", "method", r.Method, "path", r.URL.Path, "status", he.code, "err", err)
	}
	if he.code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", allowed(r.URL.Path))
	}
	name, class := feathersNames(he.code)
	writeJSON(w, he.code, map[string]any{"name": name, "message": he.msg, "code": he.code, "className": class})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
