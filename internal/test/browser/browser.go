// Package browser drives a real headless Chromium (Debian package chromium,
// found by testenv.Chromium) with chromedp, for the examples' browser tests.
//
// A [Browser] is one Chromium process bound to a test; each [Page] is a tab in
// a browser context of its own (separate cookies and storage), so two pages
// are two users. Every step fails the test with what was being done, and a
// failing test saves a screenshot of each open page as an artifact
// ([ArtifactDir]).
//
//	b := browser.Start(t)
//	p := b.NewPage(t, "alice")
//	p.Run("open the page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("cards")))
//	n := browser.Get(p, "read the count", chromedp.Text(chromedp.ID("count")))
//	p.Screenshot("voted")
package browser

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// StepTimeout bounds each [Page.Run] call.
const StepTimeout = 30 * time.Second

// Browser is a headless Chromium process that lives until the test ends.
type Browser struct {
	ctx   context.Context // the browser (first tab's) context
	mu    sync.Mutex
	pages []*Page
}

// Page is one tab, in a browser context of its own.
type Page struct {
	t    testing.TB
	name string
	ctx  context.Context
}

// Start launches Chromium headless, with its profile in a temporary
// directory; it is stopped when the test ends. The test is skipped (failed
// under ZTN_REQUIRE_TOOLS) when Chromium is not installed.
func Start(t testing.TB) *Browser {
	t.Helper()
	bin := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	// The first call binds the browser's life to its context: no timeout here.
	if err := chromedp.Do(ctx); err != nil { // starts the process
		cancel()
		cancelAlloc()
		t.Fatalf("browser: start %s: %v", bin, err)
	}
	b := &Browser{ctx: ctx}
	t.Cleanup(func() {
		b.mu.Lock()
		pages := b.pages
		b.mu.Unlock()
		if t.Failed() {
			for _, p := range pages {
				p.saveScreenshot("failed")
			}
		}
		cancel() // closes the browser gracefully
		cancelAlloc()
	})
	return b
}

// NewPage opens a tab in a new browser context (its own cookies and
// storage). name labels its steps and screenshots.
func (b *Browser) NewPage(t testing.TB, name string) *Page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	p := &Page{t: t, name: name, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // opens the tab, bound to ctx
		cancel()
		t.Fatalf("browser: open page %s: %v", name, err)
	}
	b.mu.Lock()
	b.pages = append(b.pages, p)
	b.mu.Unlock()
	t.Cleanup(cancel)
	return p
}

// Context returns the tab's chromedp context, for chromedp.Run calls that
// need their own timeout.
func (p *Page) Context() context.Context { return p.ctx }

// Run runs the actions in order within [StepTimeout], failing the test
// with step in the message when one fails.
func (p *Page) Run(step string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: page %s: %s: %v", p.name, step, err)
	}
}

// Get runs one action that returns a value (chromedp.Text, Evaluate, ...)
// within [StepTimeout], failing the test with step in the message when it
// fails.
func Get[T any](p *Page, step string, action chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		p.t.Fatalf("browser: page %s: %s: %v", p.name, step, err)
	}
	return v
}

// Screenshot saves a PNG of the whole page in [ArtifactDir] and logs its
// path.
func (p *Page) Screenshot(label string) {
	p.t.Helper()
	if path := p.saveScreenshot(label); path == "" {
		p.t.Errorf("browser: page %s: screenshot %q not saved", p.name, label)
	}
}

func (p *Page) saveScreenshot(label string) string {
	ctx, cancel := context.WithTimeout(p.ctx, StepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		p.t.Logf("browser: page %s: screenshot %q: %v", p.name, label, err)
		return ""
	}
	dir := ArtifactDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Logf("browser: artifacts: %v", err)
		return ""
	}
	path := filepath.Join(dir, fileName(p.t.Name()+"-"+p.name+"-"+label)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Logf("browser: artifacts: %v", err)
		return ""
	}
	p.t.Logf("browser: page %s: screenshot %s", p.name, path)
	return path
}

// ArtifactDir is where screenshots go: $ZTN_ARTIFACTS when set (CI keeps
// that directory), else ztn-artifacts in the system's temporary directory.
// Files are named after the test, the page and the label.
func ArtifactDir() string {
	if d := os.Getenv("ZTN_ARTIFACTS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "ztn-artifacts")
}

// fileName keeps letters, digits, '.', '-' and '_', replacing the rest by '_'.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}
