package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/http/httpguts"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

// The fuzz targets send what the fuzzer makes to the front end's handler
// and check what every answer must be (see checkAnswer). Their seeds are
// the spec's requests and the hostile ones of hostile_test.go; `go test`
// runs the seeds, `go test -fuzz=FuzzX` explores from them.

// fuzzPassword is ann's password: no answer may ever carry it.
const fuzzPassword = "pw-ann-fuzz-secret"

// fuzzFront is a front end on an in-memory store holding ann, her message
// and her token, called in process (the fuzzer runs thousands of
// requests a second).
type fuzzFront struct {
	srv   *Server
	st    *store.Memory
	token string
	annID int64
}

func newFuzzFront(tb testing.TB) *fuzzFront {
	tb.Helper()
	st := store.NewMemory()
	srv, err := New(st, testKey, WithBcryptCost(bcrypt.MinCost), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		tb.Fatal(err)
	}
	ff := &fuzzFront{srv: srv, st: st}
	if code, out := ff.call(tb, "POST", "/users", "", "application/json",
		fmt.Appendf(nil, `{"email":"ann@example.com","password":%q}`, fuzzPassword)); code != http.StatusCreated {
		tb.Fatalf("sign up: %d %v", code, out)
	}
	code, out := ff.call(tb, "POST", "/authentication", "", "application/json",
		fmt.Appendf(nil, `{"strategy":"local","email":"ann@example.com","password":%q}`, fuzzPassword))
	if code != http.StatusCreated {
		tb.Fatalf("sign in: %d %v", code, out)
	}
	ff.token = out["accessToken"].(string)
	ff.annID = int64(out["user"].(map[string]any)["id"].(float64))
	if code, out := ff.call(tb, "POST", "/messages", ff.token, "", []byte(`{"text":"hello"}`)); code != http.StatusCreated {
		tb.Fatalf("post: %d %v", code, out)
	}
	return ff
}

// call sends one request with target as the request line has it (path
// and raw query) and checks the answer with checkAnswer.
func (ff *fuzzFront) call(tb testing.TB, method, target, auth, contentType string, body []byte) (int, map[string]any) {
	tb.Helper()
	path, rawQuery, _ := strings.Cut(target, "?")
	req := httptest.NewRequestWithContext(context.Background(), method, "/", bytes.NewReader(body))
	req.URL.Path, req.URL.RawQuery, req.RequestURI = path, rawQuery, target
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return ff.serveEchoing(tb, req, bytes.Contains(body, []byte(fuzzPassword)))
}

func (ff *fuzzFront) serve(tb testing.TB, req *http.Request) (int, map[string]any) {
	tb.Helper()
	return ff.serveEchoing(tb, req, false)
}

// serveEchoing serves req; sentPassword says the request itself carries
// the password, which an error may then quote back to its sender (say, as
// an unknown key).
func (ff *fuzzFront) serveEchoing(tb testing.TB, req *http.Request, sentPassword bool) (int, map[string]any) {
	tb.Helper()
	rec := httptest.NewRecorder()
	ff.srv.ServeHTTP(rec, req)
	return rec.Code, checkAnswer(tb, req, rec, sentPassword)
}

// checkAnswer fails the test unless the answer is what every answer of
// the API must be, whatever the request: not a 5xx (the in-memory store
// never fails), a JSON body, an error in feathers' shape saying what is
// wrong, no hash anywhere, no password unless the request sent it (an
// error may quote its sender's input), a page of at most 50 records and
// no text over 400 characters. It returns the body decoded.
func checkAnswer(tb testing.TB, req *http.Request, rec *httptest.ResponseRecorder, sentPassword bool) map[string]any {
	tb.Helper()
	what := fmt.Sprintf("%s %q", req.Method, req.RequestURI)
	raw := rec.Body.String()
	if rec.Code >= 500 {
		tb.Fatalf("%s: %d %s; bad input must never be a 5xx", what, rec.Code, raw)
	}
	if strings.Contains(raw, "$2a$") || !sentPassword && strings.Contains(raw, fuzzPassword) {
		tb.Fatalf("%s: the answer carries a password or hash: %s", what, raw)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Fatalf("%s: %d with content type %q: %s", what, rec.Code, ct, raw)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		tb.Fatalf("%s: %d, body is not a JSON object (%v): %s", what, rec.Code, err, raw)
	}
	if rec.Code >= 400 {
		name, class := feathersNames(rec.Code)
		if msg, _ := out["message"].(string); out["code"] != float64(rec.Code) || out["name"] != name || out["className"] != class || msg == "" {
			tb.Fatalf("%s: %d with a body not in feathers' error shape: %s", what, rec.Code, raw)
		}
	}
	checkRecords(tb, what, out)
	return out
}

// checkRecords walks a JSON answer: no key names a password or a hash, a
// page has at most maxLimit records and no more than its limit, a text
// has at most store.MaxTextLen characters.
func checkRecords(tb testing.TB, what string, v any) {
	tb.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if lk := strings.ToLower(k); strings.Contains(lk, "password") || strings.Contains(lk, "hash") {
				tb.Fatalf("%s: the answer has a field %q", what, k)
			}
			if s, ok := x.(string); ok && k == "text" && utf8.RuneCountInString(s) > store.MaxTextLen {
				tb.Fatalf("%s: a text of %d characters", what, utf8.RuneCountInString(s))
			}
			checkRecords(tb, what, x)
		}
		if data, ok := v["data"].([]any); ok {
			limit, _ := v["limit"].(float64)
			if limit > maxLimit || float64(len(data)) > limit {
				tb.Fatalf("%s: a page of %d records with limit %v", what, len(data), v["limit"])
			}
		}
	case []any:
		for _, x := range v {
			checkRecords(tb, what, x)
		}
	}
}

// FuzzQuery: any query string of a find is a 200 page within the limits
// or a 400 that says what is wrong, on /messages and /users alike.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"", "$sort[createdAt]=-1&$limit=25", "%24sort%5BcreatedAt%5D=-1&%24limit=25", "$limit=100", "$limit=0",
		"$skip=1&$limit=2", "$sort[userId]=-1&$sort[id]=1", "userId=1", "id=1", "$sort[email]=1",
		"$limit=-1", "$limit=ten", "$skip=-5", "$sort[createdAt]=up", "$sort[password]=1", "admin=1", "userId=x",
		"$limit=99999999999999999999", "$skip=9223372036854775807", "$skip=4294967296", "$limit=2147483648",
		"$sort[id;DROP TABLE users]=1", "userId=1%20OR%201=1", "$sort[]=1", "$sort[=1", "%zz", "$limit=%00", "&&&",
		"$limit=1&$limit=2", "$sort[createdAt]=-1&$sort[createdAt]=1",
	} {
		f.Add(s)
	}
	ff := newFuzzFront(f)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		for _, path := range []string{"/messages", "/users"} {
			code, out := ff.call(t, "GET", path+"?"+rawQuery, ff.token, "", nil)
			switch code {
			case http.StatusOK:
				if skip, _ := out["skip"].(float64); skip < 0 {
					t.Fatalf("%s?%s: skip %v", path, rawQuery, out["skip"])
				}
			case http.StatusBadRequest:
			default:
				t.Fatalf("%s?%q: %d %v, want 200 or 400", path, rawQuery, code, out)
			}
		}
	})
}

// FuzzUsersBody: a sign-up body is a 201 for a checked email and a
// bcrypt-able password, or a 4xx that says what is wrong; a user created
// can sign in with exactly that password.
func FuzzUsersBody(f *testing.F) {
	for _, s := range []struct{ ct, body string }{
		{"application/json", `{"email":"bob@example.com","password":"pw-bob"}`},
		{"", `{"email":"cid@example.com","password":"pw","avatar":"https://example.com/a.png"}`},
		{"application/json; charset=utf-8", `{"email":"ann@example.com","password":"dup"}`},
		{"application/json", `{"email":"nope","password":"x"}`},
		{"application/json", `{"email":"a@b.c","password":"x","admin":true}`},
		{"application/json", `{"email":"a@b.c","password":"x","avatar":"javascript:alert(1)"}`},
		{"application/json", `{"email":"a@b.c","password":"x","email":"z@b.c"}`},
		{"application/json", `{"email":"a@b.c","Password":"x"}`},
		{"application/json", `{"email":"a\u0000@b.c","password":"x"}`},
		{"application/json", `{"email":"ännä@exämple.com","password":"x"}`},
		{"application/json", `{"email":"a'; DROP TABLE users;--@x.com","password":"x"}`},
		{"application/json", `{"email":"a@b.c","password":null}`},
		{"application/json", `{"email":"a@b.c","password":"` + strings.Repeat("x", 73) + `"}`},
		{"text/plain", `{"email":"d@b.c","password":"x"}`},
		{"application/x-www-form-urlencoded", `email=d@b.c&password=x`},
		{"application/json", `{"email":"a@b.c","password":"x"} {}`},
		{"application/json", `[]`},
		{"application/json", `{`},
		{"application/json", ""},
	} {
		f.Add(s.ct, []byte(s.body))
	}
	ff := newFuzzFront(f)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		if !httpguts.ValidHeaderFieldValue(contentType) {
			t.Skip("net/http never delivers this header")
		}
		code, out := ff.call(t, "POST", "/users", "", contentType, body)
		if code != http.StatusCreated {
			if code < 400 {
				t.Fatalf("%q: %d %v", body, code, out)
			}
			return
		}
		var sent struct{ Email, Password string }
		if err := json.Unmarshal(body, &sent); err != nil {
			t.Fatalf("%q was taken as a user: %v", body, err)
		}
		if mt, _, _ := mime.ParseMediaType(contentType); contentType != "" && mt != "application/json" {
			t.Fatalf("%q sent as %q was taken as a user", body, contentType)
		}
		if out["email"] != sent.Email || checkEmail(sent.Email) != nil {
			t.Fatalf("%q: created %v", body, out)
		}
		u, hash, err := ff.st.Credentials(t.Context(), sent.Email)
		if err != nil || u.ID != int64(out["id"].(float64)) || bcrypt.CompareHashAndPassword([]byte(hash), []byte(sent.Password)) != nil {
			t.Fatalf("%q: stored %v %q, %v", body, u, hash, err)
		}
		if _, err := ff.st.RemoveUser(t.Context(), u.ID); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzAuthenticationBody: signing in gives a token only for ann's email
// and password, or a valid token of hers; anything else is a 4xx.
func FuzzAuthenticationBody(f *testing.F) {
	ff := newFuzzFront(f)
	for _, s := range []string{
		`{"strategy":"local","email":"ann@example.com","password":"` + fuzzPassword + `"}`,
		`{"strategy":"jwt","accessToken":"` + ff.token + `"}`,
		`{"strategy":"local","email":"ann@example.com","password":"nope"}`,
		`{"strategy":"local","email":"ann@example.com"}`,
		`{"email":"ann@example.com","password":"x"}`,
		`{"strategy":"github"}`,
		`{"strategy":"jwt","accessToken":"not-a-jwt"}`,
		`{"strategy":"jwt","strategy":"local","email":"ann@example.com","password":"x"}`,
		`{"strategy":"local","email":"ann@example.com","password":"` + fuzzPassword + `","password":"x"}`,
		`{"strategy":"local","email":"ANN@example.com","password":"` + fuzzPassword + `"}`,
		`{"strategy":"local","email":"ann@example.com' OR '1'='1","password":"x"}`,
		`{"strategy":"local","email":"ann@example.com\u0000","password":"x"}`,
		`{"strategy":1}`, `null`, `"local"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, out := ff.call(t, "POST", "/authentication", "", "application/json", body)
		if code != http.StatusCreated {
			if code < 400 {
				t.Fatalf("%q: %d %v", body, code, out)
			}
			return
		}
		var sent authRequest
		if err := json.Unmarshal(body, &sent); err != nil {
			t.Fatalf("%q signed in: %v", body, err)
		}
		switch {
		case sent.Strategy == "local" && sent.Email == "ann@example.com" && sent.Password == fuzzPassword:
		case sent.Strategy == "jwt" && signedByTestKey(sent.AccessToken):
		default:
			t.Fatalf("%q signed in as %v", body, out["user"])
		}
		if u, _ := out["user"].(map[string]any); u["id"] != float64(ff.annID) || !signedByTestKey(out["accessToken"].(string)) {
			t.Fatalf("%q: signed in with %v", body, out)
		}
	})
}

// FuzzMessagesBody: a post is a 201 whose text is the text sent, cut to
// 400 characters, never blank, without NUL (store.CheckText); or a 4xx. What is stored is what is
// answered.
func FuzzMessagesBody(f *testing.F) {
	for _, s := range []string{
		`{"text":"hello"}`, `{"text":"/fortune"}`, `{"text":""}`, `{"text":" \n\t"}`, `{}`, `{"text":null}`, `{"text":5}`,
		`{"text":"x","userId":2}`, `text=hi`, `{"text":"a","text":"b"}`, `{"Text":"a"}`, `{"text":"nul\u0000byte"}`,
		`{"text":"` + strings.Repeat("é", 450) + `"}`, `{"text":"` + strings.Repeat("🦊", 401) + `"}`,
		`{"text":"'); DELETE FROM messages; --"}`, `{"text":"\ud800"}`, "{\"text\":\"\xff\xfe\"}", `{"text":"<script>alert(1)</script>"}`,
	} {
		f.Add([]byte(s))
	}
	ff := newFuzzFront(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		code, out := ff.call(t, "POST", "/messages", ff.token, "application/json", body)
		if code != http.StatusCreated {
			if code < 400 {
				t.Fatalf("%q: %d %v", body, code, out)
			}
			return
		}
		var sent messageData
		if err := json.Unmarshal(body, &sent); err != nil || sent.Text == nil {
			t.Fatalf("%q was posted: %v", body, err)
		}
		text, _ := out["text"].(string)
		if store.CheckText(text) != nil || text != store.CutText(*sent.Text) || out["userId"] != float64(ff.annID) {
			t.Fatalf("%q: posted %v", body, out)
		}
		id := int64(out["id"].(float64))
		m, err := ff.st.Message(t.Context(), id)
		if err != nil || m.Text != text {
			t.Fatalf("%q: stored %q, %v; answered %q", body, m.Text, err, text)
		}
		if _, err := ff.st.RemoveMessage(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzToken: whatever the Authorization header or ?token= says, only a
// token that is HS256 under the server's key (checked here with HMAC,
// not the JWT library) is let in; any other is a 401, on the API and on
// the event stream.
func FuzzToken(f *testing.F) {
	ff := newFuzzFront(f)
	for _, tok := range forgedTokens(f, ff.annID) {
		f.Add(tok)
	}
	f.Add(ff.token)
	f.Add("Bearer " + ff.token)
	f.Add("bearer  " + ff.token + " ")
	f.Add("Basic YW5uOnB3")
	f.Fuzz(func(t *testing.T, header string) {
		if !httpguts.ValidHeaderFieldValue(header) {
			t.Skip("net/http never delivers this header")
		}
		req := httptest.NewRequestWithContext(context.Background(), "GET", "/messages", nil)
		req.Header.Set("Authorization", header)
		code, out := ff.serve(t, req)
		tok := bearer(req)
		switch {
		case code == http.StatusOK && signedByTestKey(tok):
			return // the stream would stay open: the API's answer is enough
		case code == http.StatusUnauthorized && tok == "":
			return // no token: /events would be an anonymous stream
		case code == http.StatusUnauthorized:
		default:
			t.Fatalf("Authorization %q: %d %v", header, code, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		byHeader := func(r *http.Request) *http.Request { r.Header.Set("Authorization", header); return r }
		for _, req := range []*http.Request{
			httptest.NewRequestWithContext(ctx, "GET", "/events?token="+url.QueryEscape(tok), nil),
			byHeader(httptest.NewRequestWithContext(ctx, "GET", "/events", nil)),
			byHeader(httptest.NewRequestWithContext(ctx, "POST", "/messages", strings.NewReader(`{"text":"x"}`))),
			byHeader(httptest.NewRequestWithContext(ctx, "DELETE", "/authentication", nil)),
		} {
			if code, out := ff.serve(t, req); code != http.StatusUnauthorized {
				t.Fatalf("%s %s with %q: %d %v, want 401", req.Method, req.URL, header, code, out)
			}
		}
	})
}

// signedByTestKey reports whether tok is a JWT whose header says HS256
// and whose signature is HMAC-SHA256 under testKey.
func signedByTestKey(tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	head, err := base64.RawURLEncoding.DecodeString(parts[0])
	var h struct{ Alg string }
	if err != nil || json.Unmarshal(head, &h) != nil || h.Alg != "HS256" {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	mac := hmac.New(sha256.New, testKey)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	return err == nil && hmac.Equal(sig, mac.Sum(nil))
}

// forgedTokens are tokens for the user id that the server must refuse:
// alg none, another key, HS512 with the server's key, RS-style headers,
// expired, without expiry or audience, a payload swapped under a real
// signature.
func forgedTokens(tb testing.TB, id int64) []string {
	tb.Helper()
	now := time.Now()
	valid := validClaims(id, now)
	sign := func(m jwt.SigningMethod, c jwt.RegisteredClaims, key any) string { return signToken(tb, m, c, key) }
	expired, noExp, noAud, future := valid, valid, valid, valid
	expired.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour))
	noExp.ExpiresAt = nil
	noAud.Audience = nil
	future.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour))
	enc := base64.RawURLEncoding.EncodeToString
	payload := enc(fmt.Appendf(nil, `{"sub":"%d","iss":%q,"aud":%q,"exp":%d}`, id, tokenIssuer, tokenAudience, now.Add(time.Hour).Unix()))
	good := sign(jwt.SigningMethodHS256, valid, testKey)
	parts := strings.Split(good, ".")
	return []string{
		enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + payload + ".",
		enc([]byte(`{"alg":"None"}`)) + "." + payload + ".",
		sign(jwt.SigningMethodNone, valid, jwt.UnsafeAllowNoneSignatureType),
		sign(jwt.SigningMethodHS256, valid, []byte("another key, also thirty-two bytes long")),
		sign(jwt.SigningMethodHS512, valid, testKey),
		sign(jwt.SigningMethodHS384, valid, testKey),
		enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2],
		sign(jwt.SigningMethodHS256, expired, testKey),
		sign(jwt.SigningMethodHS256, noExp, testKey),
		sign(jwt.SigningMethodHS256, noAud, testKey),
		sign(jwt.SigningMethodHS256, future, testKey),
		parts[0] + "." + payload + "." + parts[2],
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1],
		good + "." + parts[2],
		"not-a-jwt", "..", "", "Bearer ", "Bearer",
	}
}

// validClaims are the claims of a token the server accepts for the user
// id, issued at now and valid for an hour.
func validClaims(id int64, now time.Time) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Subject: fmt.Sprint(id), Issuer: tokenIssuer, Audience: jwt.ClaimStrings{tokenAudience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}
}

// signToken signs c with m under key.
func signToken(tb testing.TB, m jwt.SigningMethod, c jwt.RegisteredClaims, key any) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
