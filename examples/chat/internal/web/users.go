package web

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"unicode"

	"golang.org/x/crypto/bcrypt"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

// gravatar is the avatar feathers-chat gives a user who brings none.
func gravatar(email string) string {
	sum := md5.Sum([]byte(strings.ToLower(email)))
	return "https://s.gravatar.com/avatar/" + hex.EncodeToString(sum[:]) + "?s=60"
}

// userData is the body of a user create or patch; pointers tell a field
// left out from one set empty.
type userData struct {
	Email    *string `json:"email"`
	Password *string `json:"password"`
	Avatar   *string `json:"avatar"`
}

// checkEmail is [store.CheckEmail] as a 400.
func checkEmail(e string) error {
	if store.CheckEmail(e) != nil {
		return errorf(http.StatusBadRequest, "email %q is not an email address", e)
	}
	return nil
}

func checkAvatar(a string) error {
	if !strings.HasPrefix(a, "https://") && !strings.HasPrefix(a, "http://") || strings.ContainsAny(a, " \"<>") ||
		strings.ContainsFunc(a, unicode.IsControl) || len(a) > store.MaxAvatarLen {
		return errorf(http.StatusBadRequest, "avatar must be an http(s) URL of at most %d bytes", store.MaxAvatarLen)
	}
	return nil
}

func (s *Server) hashPassword(p string) (string, error) {
	if p == "" {
		return "", errorf(http.StatusBadRequest, "password must not be empty")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(p), s.cfg.bcryptCost)
	if errors.Is(err, bcrypt.ErrPasswordTooLong) {
		return "", errorf(http.StatusBadRequest, "password is longer than 72 bytes")
	}
	return string(h), err
}

func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		s.createUser(w, r)
	case http.MethodGet:
		if _, _, err := s.authenticate(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		q, err := parseQuery(r.URL, "id")
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		p, err := s.st.FindUsers(r.Context(), q)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, p)
	default:
		s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "Method %s is not supported by this endpoint.", r.Method))
	}
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var d userData
	if err := decodeBody(w, r, &d); err != nil {
		s.writeError(w, r, err)
		return
	}
	if d.Email == nil || d.Password == nil {
		s.writeError(w, r, errorf(http.StatusBadRequest, "email and password are required"))
		return
	}
	if err := checkEmail(*d.Email); err != nil {
		s.writeError(w, r, err)
		return
	}
	nu := store.NewUser{Email: *d.Email, Avatar: gravatar(*d.Email)}
	if d.Avatar != nil {
		if err := checkAvatar(*d.Avatar); err != nil {
			s.writeError(w, r, err)
			return
		}
		nu.Avatar = *d.Avatar
	}
	var err error
	if nu.PasswordHash, err = s.hashPassword(*d.Password); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.st.CreateUser(r.Context(), nu)
	if errors.Is(err, store.ErrConflict) {
		err = errorf(http.StatusConflict, "email %q is already taken", nu.Email)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

func (s *Server) handleUser(w http.ResponseWriter, r *http.Request) {
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
	if r.Method != http.MethodGet && id != c.UserID {
		s.writeError(w, r, errorf(http.StatusForbidden, "you can only change your own user"))
		return
	}
	var u store.User
	switch r.Method {
	case http.MethodGet:
		u, err = s.st.User(r.Context(), id)
	case http.MethodPatch:
		var d userData
		if err := decodeBody(w, r, &d); err != nil {
			s.writeError(w, r, err)
			return
		}
		var p store.UserPatch
		if d.Email != nil {
			if err := checkEmail(*d.Email); err != nil {
				s.writeError(w, r, err)
				return
			}
			p.Email = d.Email
		}
		if d.Avatar != nil {
			if err := checkAvatar(*d.Avatar); err != nil {
				s.writeError(w, r, err)
				return
			}
			p.Avatar = d.Avatar
		}
		if d.Password != nil {
			h, err := s.hashPassword(*d.Password)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			p.PasswordHash = &h
		}
		u, err = s.st.PatchUser(r.Context(), id, p)
		if errors.Is(err, store.ErrConflict) {
			err = errorf(http.StatusConflict, "email %q is already taken", *p.Email)
		}
	case http.MethodDelete:
		u, err = s.st.RemoveUser(r.Context(), id)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}
