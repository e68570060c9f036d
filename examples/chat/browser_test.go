package main

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ztnlabs/ztn/internal/test/browser"
)

// testBrowser: two real Chromium pages sign up two users through the
// gateway; a message posted in one appears in the other without a reload;
// an anonymous page's event stream gets nothing pushed; /fortune gets the
// bot's reply in both.
func testBrowser(t *testing.T, gateway string) {
	b := browser.Start(t)
	alice, carol, anon := b.NewPage(t, "alice"), b.NewPage(t, "carol"), b.NewPage(t, "anonymous")

	// The anonymous page listens to the event stream itself, as the page
	// would if it had a token, and records whatever is pushed.
	anon.Run("open the page", chromedp.Navigate(gateway+"/"), chromedp.WaitVisible("#login"))
	anon.Run("listen to /events without a token",
		chromedp.Evaluate[chromedp.Void](`window.pushed = []; window.connected = "";
			const es = new EventSource('/events');
			es.addEventListener('connected', (e) => { window.connected = e.data; });
			for (const ev of ['messages created', 'users created']) es.addEventListener(ev, (e) => window.pushed.push(e.data));`),
		chromedp.Poll[chromedp.Void](`window.connected !== ""`, chromedp.WithPollingTimeout(20*time.Second)))

	signUp := func(p *browser.Page, email string) {
		p.Run("sign up as "+email,
			chromedp.Navigate(gateway+"/"),
			chromedp.WaitVisible("#login"),
			chromedp.SendKeys("#email", email),
			chromedp.SendKeys("#password", "pw-"+email),
			chromedp.Click("#signup"),
			chromedp.WaitVisible("#chat"),
			chromedp.WaitVisible(`//span[@id="live"][text()="live"]`))
	}
	signUp(alice, "alice@example.com")
	signUp(carol, "carol@example.com")

	alice.Run("post a message", chromedp.SendKeys("#text", "hello carol, from alice's page"),
		chromedp.Click("#send"))
	carol.Run("see alice's message without reloading",
		chromedp.WaitVisible(`//li[contains(@class,"message")][.//strong[text()="alice@example.com"]]/p[text()="hello carol, from alice's page"]`))

	alice.Run("ask for a fortune", chromedp.SendKeys("#text", "/fortune"), chromedp.Click("#send"))
	botReply := `//li[contains(@class,"message")][.//strong[text()="bot@chat.invalid"]]/p[starts-with(text(), "🥠")]`
	alice.Run("see the bot's reply", chromedp.WaitVisible(botReply))
	carol.Run("see the bot's reply", chromedp.WaitVisible(botReply))
	carol.Screenshot("after-fortune")

	pushed := browser.Get(anon, "read what was pushed to the anonymous stream", chromedp.Evaluate[[]string](`window.pushed`))
	if len(pushed) != 0 {
		t.Errorf("the anonymous page was pushed %q", pushed)
	}
	connected := browser.Get(anon, "read the anonymous greeting", chromedp.Evaluate[string](`window.connected`))
	if connected != `{"authenticated":false}` {
		t.Errorf("the anonymous stream's greeting %q", connected)
	}
}
