package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ztnlabs/ztn/internal/test/browser"
)

// TestBrowser: a real headless Chromium opens the page through the gateway
// (the whole app on the dev mesh, on Postgres and Redis when installed),
// sees the four cards, votes for two restaurants, and sees their counts and
// the pie chart change; the page views and the app server are shown. The
// assertions read the DOM; screenshots are kept as artifacts.
func TestBrowser(t *testing.T) {
	app := startDevT(t, devConfig{})
	t.Logf("stores: %s", app.Store)
	voteInBrowser(t, app.URL)
}

// pieState is the pie chart as the page draws it: each slice's restaurant
// and value.
type pieState map[string]int

// voteInBrowser opens url, votes for ihop and chipotle and checks what the
// page shows after each vote.
func voteInBrowser(t *testing.T, url string) {
	t.Helper()
	b := browser.Start(t)
	p := b.NewPage(t, "voter")
	p.Run("open the page through the gateway", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("pie")))
	if title := browser.Get(p, "read the title", chromedp.Title()); title != "Yelb" {
		t.Errorf("title %q; want Yelb", title)
	}
	cards := browser.Get(p, "count the cards", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("button.vote")].map(b => b.dataset.restaurant)`))
	if strings.Join(cards, ",") != "ihop,chipotle,outback,bucadibeppo" {
		t.Fatalf("Vote buttons for %v; want the four restaurants", cards)
	}
	// On load the page asks getvotes, then getstats.
	browser.Get(p, "wait for the votes and the stats", chromedp.Poll[bool](
		`document.getElementById("votes-total").textContent !== "-" && document.getElementById("hostname").textContent !== "-"`))
	views := atoiT(t, browser.Get(p, "read the page views", chromedp.Text(chromedp.ID("pageviews"))))
	host := browser.Get(p, "read the app server", chromedp.Text(chromedp.ID("hostname")))
	if views < 1 || host == "" || strings.ContainsAny(host, " \n") {
		t.Errorf("page views %d, app server %q", views, host)
	}
	p.Screenshot("loaded")

	counts := func() map[string]int {
		m := map[string]int{}
		for _, r := range cards {
			m[r] = atoiT(t, browser.Get(p, "read the count of "+r, chromedp.Text(chromedp.ID("votes-"+r))))
		}
		return m
	}
	pie := func() pieState {
		js := browser.Get(p, "read the pie chart", chromedp.Evaluate[string](
			`JSON.stringify(Object.fromEntries([...document.querySelectorAll("#pie .slice")].map(e => [e.dataset.name, +e.dataset.value])))`))
		var s pieState
		if err := json.Unmarshal([]byte(js), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before, pieBefore := counts(), pie()
	for _, r := range []string{"ihop", "chipotle"} {
		want := before[r] + 1
		p.Run("vote for "+r, chromedp.Click(chromedp.CSS(`button[data-restaurant="`+r+`"]`)))
		browser.Get(p, "wait for the count of "+r, chromedp.Poll[bool](
			`document.getElementById("votes-`+r+`").textContent === "`+strconv.Itoa(want)+`"`))
		before[r] = want
	}
	after, pieAfter := counts(), pie()
	for r, n := range after {
		if n != before[r] {
			t.Errorf("count of %s: %d; want %d", r, n, before[r])
		}
		if pieAfter[r] != n {
			t.Errorf("pie slice of %s: %d; want %d (pie %v)", r, pieAfter[r], n, pieAfter)
		}
	}
	if pieAfter["ihop"] != pieBefore["ihop"]+1 || pieAfter["chipotle"] != pieBefore["chipotle"]+1 {
		t.Errorf("pie chart before %v, after %v; want ihop and chipotle one more", pieBefore, pieAfter)
	}
	total := atoiT(t, browser.Get(p, "read the total", chromedp.Text(chromedp.ID("votes-total"))))
	sum := 0
	for _, n := range after {
		sum += n
	}
	if total != sum {
		t.Errorf("total %d; want %d", total, sum)
	}
	p.Screenshot("voted")
	t.Logf("voted in the browser: counts %v, pie %v, page views %d, app server %s", after, pieAfter, views, host)
}

func atoiT(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}
