package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

const testAPIKey = "k3y-s3cret/+&"

// fakeWeatherAPI stands in for the weather SaaS: an HTTPS server that
// checks the key and knows two cities.
func fakeWeatherAPI(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		q := r.URL.Query()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path != "/data/2.5/weather":
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"cod":"404","message":"no such endpoint"}`)
		case q.Get("appid") != testAPIKey:
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"cod":401,"message":"Invalid API key."}`)
		case q.Get("units") != "metric":
			w.WriteHeader(http.StatusBadRequest)
		case q.Get("q") == "Paris":
			fmt.Fprint(w, `{"name":"Paris","main":{"temp":18.46,"humidity":60},"weather":[{"main":"Rain","description":"light rain"}],"cod":200}`)
		case q.Get("q") == "São Paulo":
			fmt.Fprint(w, `{"name":"São Paulo","main":{"temp":-1},"weather":[],"cod":200}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"cod":"404","message":"city not found"}`)
		}
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusting client's handshake
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts, &calls
}

func TestWeatherClient(t *testing.T) {
	ts, calls := fakeWeatherAPI(t)
	w, err := NewWeatherClient(ts.URL, testAPIKey, ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	r, err := w.Weather(ctx, "Paris")
	if err != nil || r != (Report{City: "Paris", Celsius: 18.46, Description: "light rain"}) {
		t.Fatalf("Paris: %+v, %v", r, err)
	}
	if s := r.String(); s != "Weather in Paris: 18.5 °C, light rain" {
		t.Fatalf("report %q", s)
	}
	if r, err := w.Weather(ctx, "São Paulo"); err != nil || r.String() != "Weather in São Paulo: -1.0 °C" {
		t.Fatalf("São Paulo: %v, %v", r, err)
	}
	if _, err := w.Weather(ctx, "Atlantis"); err == nil || !strings.Contains(err.Error(), "404 Not Found: city not found") {
		t.Fatalf("Atlantis: %v", err)
	}
	wrongKey, _ := NewWeatherClient(ts.URL, "wrong", ts.Client())
	if _, err := wrongKey.Weather(ctx, "Paris"); err == nil || !strings.Contains(err.Error(), "Invalid API key") {
		t.Fatalf("wrong key: %v", err)
	}
	// A client that does not trust the API's certificate gets nowhere.
	untrusting, _ := NewWeatherClient(ts.URL, testAPIKey, nil)
	before := calls.Load()
	if _, err := untrusting.Weather(ctx, "Paris"); err == nil || !strings.Contains(err.Error(), "certificate") || strings.Contains(err.Error(), "k3y") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	if calls.Load() != before {
		t.Fatal("a request reached the API over an untrusted connection")
	}
	if _, err := NewWeatherClient(strings.Replace(ts.URL, "https", "http", 1), testAPIKey, nil); err == nil {
		t.Fatal("an http:// API URL was accepted")
	}
	if _, err := NewWeatherClient(ts.URL, "", nil); err == nil {
		t.Fatal("an empty API key was accepted")
	}
	// The API down: an error that says so and does not show the key.
	ts.Close()
	_, err = w.Weather(ctx, "Paris")
	if err == nil || strings.Contains(err.Error(), "k3y") || !strings.Contains(err.Error(), "weather API") {
		t.Fatalf("API down: %v", err)
	}
}

// fortuneServer serves one fortune per connection, then closes, as the
// fortune service does; hang makes it never answer.
func fortuneServer(t *testing.T, fortune string, hang bool) func(ctx context.Context) (net.Conn, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				if hang {
					time.Sleep(5 * time.Second)
				} else {
					c.Write([]byte(fortune))
				}
				c.Close()
			}()
		}
	}()
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", l.Addr().String())
	}
}

func TestDialFortune(t *testing.T) {
	f := DialFortune(fortuneServer(t, "Trust, but verify.\n", false))
	got, err := f.Fortune(t.Context())
	if err != nil || got != "Trust, but verify.\n" {
		t.Fatalf("fortune %q, %v", got, err)
	}
	slow := DialFortune(fortuneServer(t, "", true))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := slow.Fortune(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("hanging service: %v after %v", err, time.Since(start))
	}
	down := DialFortune(func(ctx context.Context) (net.Conn, error) {
		return nil, errors.New("no healthy instance of fortune")
	})
	if _, err := down.Fortune(t.Context()); err == nil || err.Error() != "fortune service: no healthy instance of fortune" {
		t.Fatalf("service down: %v", err)
	}
}

func TestReply(t *testing.T) {
	ts, _ := fakeWeatherAPI(t)
	w, err := NewWeatherClient(ts.URL, testAPIKey, ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	fortune := FortunerFunc(func(context.Context) (string, error) { return "You will write tests.\n", nil })
	broken := FortunerFunc(func(context.Context) (string, error) { return "", errors.New("fortune service: refused by intentions") })
	slow := FortunerFunc(func(ctx context.Context) (string, error) { <-ctx.Done(); return "", ctx.Err() })
	b := New(fortune, w)
	for _, tc := range []struct {
		bot        *Bot
		text, want string
		answers    bool
	}{
		{b, "hello", "", false},
		{b, "what about /fortune", "", false},
		{b, "/fortune", "🥠 You will write tests.", true},
		{b, "  /FORTUNE please ", "🥠 You will write tests.", true},
		{b, "/weather Paris", "Weather in Paris: 18.5 °C, light rain", true},
		{b, "/weather   São Paulo ", "Weather in São Paulo: -1.0 °C", true},
		{b, "/weather Atlantis", "Sorry, /weather Atlantis failed: weather API: 404 Not Found: city not found", true},
		{b, "/weather", "Which city? Say /weather <city>, e.g. /weather Paris.", true},
		{b, "/weather " + strings.Repeat("x", 101), "That city name is too long.", true},
		{b, "/help", help, true},
		{b, "/joke", "I don't know /joke. " + help, true},
		{New(broken, nil), "/fortune", "Sorry, /fortune failed: fortune service: refused by intentions", true},
		{New(slow, nil, WithTimeout(50*time.Millisecond)), "/fortune", "Sorry, /fortune failed: context deadline exceeded", true},
		{New(nil, nil), "/weather Paris", "Sorry, /weather is not set up here.", true},
		{New(nil, nil), "/fortune", "Sorry, /fortune is not set up here.", true},
	} {
		got, ok := tc.bot.Reply(t.Context(), tc.text)
		if got != tc.want || ok != tc.answers {
			t.Errorf("Reply(%q) = %q, %t; want %q, %t", tc.text, got, ok, tc.want, tc.answers)
		}
	}
	// What the getters say is not trusted: no control character but
	// newline and tab reaches the store, which would refuse a NUL.
	hostile := New(FortunerFunc(func(context.Context) (string, error) { return "a\x00b\x1b[2Jc\n\td\u0085", nil }),
		WeathererFunc(func(context.Context, string) (Report, error) {
			return Report{City: "Oslo\x00", Celsius: 1, Description: "snow\x07\x1b]0;pwned\x07"}, nil
		}))
	for text, want := range map[string]string{"/fortune": "🥠 ab[2Jc\n\td", "/weather Oslo": "Weather in Oslo: 1.0 °C, snow]0;pwned"} {
		if got, _ := hostile.Reply(t.Context(), text); got != want || store.CheckText(got) != nil {
			t.Errorf("Reply(%q) with hostile getters = %q, want %q", text, got, want)
		}
	}
	long := New(FortunerFunc(func(context.Context) (string, error) { return strings.Repeat("ab", 300), nil }), nil)
	if got, _ := long.Reply(t.Context(), "/fortune"); len([]rune(got)) != store.MaxTextLen {
		t.Errorf("long fortune answered with %d characters, want %d", len([]rune(got)), store.MaxTextLen)
	}
}

// TestRun: the bot follows the store, answers commands as itself, never
// answers itself, and keeps answering after the weather API goes down.
func TestRun(t *testing.T) {
	ts, _ := fakeWeatherAPI(t)
	w, err := NewWeatherClient(ts.URL, testAPIKey, ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	me, err := EnsureUser(ctx, st, DefaultEmail)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := EnsureUser(ctx, st, DefaultEmail); err != nil || again != me {
		t.Fatalf("EnsureUser again: %+v, %v", again, err)
	}
	if _, hash, _ := st.Credentials(ctx, DefaultEmail); hash != "" {
		t.Fatal("the bot user has a password hash: someone could sign in as the bot")
	}
	ann, err := st.CreateUser(ctx, store.NewUser{Email: "ann@example.com", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	// Written before the bot starts: not answered.
	post(t, st, ann, "/help")

	b := New(DialFortune(fortuneServer(t, "Simplicity is prerequisite for reliability.\n", false)), w,
		WithLogger(slog.New(slog.DiscardHandler)))
	started := make(chan struct{})
	b.cfg.started = func() { close(started) }
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- b.Run(runCtx, st, me.ID) }()
	<-started

	answers := follow(t, st, me.ID)
	post(t, st, ann, "/fortune")
	if got := next(t, answers); got != "🥠 Simplicity is prerequisite for reliability." {
		t.Fatalf("answer %q", got)
	}
	post(t, st, ann, "just chatting")
	post(t, st, ann, "/weather Paris")
	if got := next(t, answers); got != "Weather in Paris: 18.5 °C, light rain" {
		t.Fatalf("answer %q", got)
	}
	ts.Close() // the SaaS goes down
	post(t, st, ann, "/weather Paris")
	if got := next(t, answers); !strings.HasPrefix(got, "Sorry, /weather Paris failed: weather API: ") || strings.Contains(got, "k3y") {
		t.Fatalf("answer with the API down: %q", got)
	}
	post(t, st, ann, "/fortune")
	if got := next(t, answers); !strings.HasPrefix(got, "🥠 ") {
		t.Fatalf("answer after the API went down: %q", got)
	}
	// The bot's own commands get no answer (no loop).
	post(t, st, me, "/help")
	select {
	case got := <-answers:
		t.Fatalf("the bot answered itself: %q", got)
	case <-time.After(300 * time.Millisecond):
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n, _ := st.CountMessages(ctx); n != 11 {
		t.Fatalf("%d messages, want 11 (6 by ann, 1 by the bot itself, 4 answers)", n)
	}
}

func post(t *testing.T, st store.Store, u store.User, text string) {
	t.Helper()
	if _, err := st.CreateMessage(t.Context(), store.NewMessage{Text: text, UserID: u.ID, CreatedAt: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
}

// follow returns the texts of new messages by the bot, skipping the bot's
// own "/help" post of the test.
func follow(t *testing.T, st store.Store, botID int64) <-chan string {
	pos, err := st.Position(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go st.Follow(ctx, pos, func(ev store.Event) error {
		if m := ev.Message; m != nil && m.UserID == botID && m.Text != "/help" {
			ch <- m.Text
		}
		return nil
	})
	return ch
}

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no answer from the bot")
		return ""
	}
}
