package browser_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ztnlabs/ztn/internal/test/browser"
)

// TestPagesAreSeparateUsers drives a real Chromium: a click runs the page's
// script, which calls the server; each page has its own cookies; a
// screenshot lands in the artifact directory.
func TestPagesAreSeparateUsers(t *testing.T) {
	t.Setenv("ZTN_ARTIFACTS", t.TempDir())
	var clicks atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			if _, err := r.Cookie("user"); err != nil {
				http.SetCookie(w, &http.Cookie{Name: "user", Value: r.URL.Query().Get("u")})
			}
			fmt.Fprint(w, `<!doctype html><title>t</title><button id="b" onclick="fetch('/click').then(r=>r.text()).then(t=>{document.getElementById('n').textContent=t})">click</button><span id="n">0</span>`)
		case "/click":
			c, err := r.Cookie("user")
			if err != nil {
				http.Error(w, "no cookie", http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%s:%d", c.Value, clicks.Add(1))
		}
	}))
	defer srv.Close()

	b := browser.Start(t)
	alice, bob := b.NewPage(t, "alice"), b.NewPage(t, "bob")
	alice.Run("open", chromedp.Navigate(srv.URL+"/?u=alice"), chromedp.WaitVisible(chromedp.ID("b")))
	bob.Run("open", chromedp.Navigate(srv.URL+"/?u=bob"), chromedp.WaitVisible(chromedp.ID("b")))
	alice.Run("click", chromedp.Click(chromedp.ID("b")), chromedp.WaitNotPresent(`//span[@id="n"][text()="0"]`))
	got := browser.Get(alice, "read", chromedp.Text(chromedp.ID("n")))
	if got != "alice:1" {
		t.Errorf("alice's page shows %q, want alice:1", got)
	}
	bob.Run("click", chromedp.Click(chromedp.ID("b")), chromedp.WaitNotPresent(`//span[@id="n"][text()="0"]`))
	got = browser.Get(bob, "read", chromedp.Text(chromedp.ID("n")))
	if got != "bob:2" {
		t.Errorf("bob's page shows %q, want bob:2 (his own cookie)", got)
	}
	alice.Screenshot("clicked")
	shots, _ := filepath.Glob(filepath.Join(browser.ArtifactDir(), "*.png"))
	if len(shots) != 1 || !strings.Contains(shots[0], "alice-clicked") {
		t.Fatalf("artifacts = %v, want one alice-clicked PNG", shots)
	}
	if fi, err := os.Stat(shots[0]); err != nil || fi.Size() < 100 {
		t.Errorf("screenshot %s: %v, %v", shots[0], fi, err)
	}
}
