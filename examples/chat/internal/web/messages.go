package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errorf(http.StatusNotFound, "No record found for id '%s'", r.PathValue("id"))
	}
	return id, nil
}

type messageData struct {
	Text *string `json:"text"`
}

// messageText checks and cuts a message's text: not missing, not blank,
// no NUL, at most [store.MaxTextLen] characters.
func messageText(d messageData) (string, error) {
	if d.Text == nil || strings.TrimSpace(*d.Text) == "" {
		return "", errorf(http.StatusBadRequest, "A message must have a text")
	}
	text := store.CutText(*d.Text)
	if err := store.CheckText(text); err != nil {
		return "", errorf(http.StatusBadRequest, "%v", err)
	}
	return text, nil
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodPost:
	default:
		s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "Method %s is not supported by this endpoint.", r.Method))
		return
	}
	c, _, err := s.authenticate(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.Method == http.MethodGet {
		q, err := parseQuery(r.URL, "userId")
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		p, err := s.st.FindMessages(r.Context(), q)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, p)
		return
	}
	var d messageData
	if err := decodeBody(w, r, &d); err != nil {
		s.writeError(w, r, err)
		return
	}
	text, err := messageText(d)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := s.st.CreateMessage(r.Context(), store.NewMessage{Text: text, UserID: c.UserID, CreatedAt: s.cfg.now().UnixMilli()})
	if errors.Is(err, store.ErrNotFound) {
		err = errorf(http.StatusUnauthorized, "the token's user does not exist")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, m)
}

func (s *Server) handleMessage(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodPatch, http.MethodDelete:
	default:
		s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "Method %s is not supported by this endpoint.", r.Method))
		return
	}
	c, _, err := s.authenticate(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := s.st.Message(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.Method != http.MethodGet && m.UserID != c.UserID {
		s.writeError(w, r, errorf(http.StatusForbidden, "you can only change your own messages"))
		return
	}
	switch r.Method {
	case http.MethodPatch:
		var d messageData
		if err := decodeBody(w, r, &d); err != nil {
			s.writeError(w, r, err)
			return
		}
		text, err := messageText(d)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		m, err = s.st.PatchMessage(r.Context(), id, text)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
	case http.MethodDelete:
		if m, err = s.st.RemoveMessage(r.Context(), id); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, m)
}
