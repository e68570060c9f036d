package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/web"
)

// A front end on an in-memory store: sign up, sign in, post, page.
func ExampleNew() {
	key := []byte("a signing key of at least 32 bytes, from Vault KV")
	srv, err := web.New(store.NewMemory(), key, web.WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		panic(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	call := func(method, path, token string, body any) (int, map[string]any) {
		data, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, ts.URL+path, bytes.NewReader(data))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}

	code, user := call("POST", "/users", "", map[string]string{"email": "ann@example.com", "password": "s3cret"})
	fmt.Println(code, user["email"], user["password"] == nil)
	_, auth := call("POST", "/authentication", "", map[string]string{"strategy": "local", "email": "ann@example.com", "password": "s3cret"})
	token := auth["accessToken"].(string)

	code, _ = call("GET", "/messages", "", nil)
	fmt.Println("without a token:", code)
	_, msg := call("POST", "/messages", token, map[string]string{"text": strings.Repeat("a", 450)})
	fmt.Println("kept", len(msg["text"].(string)), "characters by", msg["user"].(map[string]any)["email"])
	code, _ = call("POST", "/messages", token, map[string]string{"text": " "})
	fmt.Println("blank:", code)
	_, page := call("GET", "/messages?$limit=100", token, nil)
	fmt.Println("total", page["total"], "limit", page["limit"])
	// Output:
	// 201 ann@example.com true
	// without a token: 401
	// kept 400 characters by ann@example.com
	// blank: 400
	// total 1 limit 50
}
