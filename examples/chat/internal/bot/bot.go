// Package bot is the chat's bot: it follows new messages and answers
// commands as a user of its own.
//
//	/fortune          a fortune cookie, from a [Fortuner] (the fortune service)
//	/weather <city>   the weather, from a [Weatherer] (an external HTTPS API)
//	/help             the commands
//
// [Bot.Reply] is the pure part: a message text in, the answer out. When
// a getter fails the answer says what failed ("Sorry, /weather Paris
// failed: ...") so the chat keeps going. [Bot.Run] follows a [Store] and
// posts the answers.
//
//	b := bot.New(bot.DialFortune(dial), weather)
//	me, err := bot.EnsureUser(ctx, users, bot.DefaultEmail)
//	if err != nil {
//		return err
//	}
//	return b.Run(ctx, st, me.ID)
package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

// Fortuner tells a fortune.
type Fortuner interface {
	Fortune(ctx context.Context) (string, error)
}

// FortunerFunc is a function that is a [Fortuner].
type FortunerFunc func(ctx context.Context) (string, error)

// Fortune implements [Fortuner].
func (f FortunerFunc) Fortune(ctx context.Context) (string, error) { return f(ctx) }

// Weatherer reports the current weather of a city.
type Weatherer interface {
	Weather(ctx context.Context, city string) (Report, error)
}

// WeathererFunc is a function that is a [Weatherer].
type WeathererFunc func(ctx context.Context, city string) (Report, error)

// Weather implements [Weatherer].
func (f WeathererFunc) Weather(ctx context.Context, city string) (Report, error) { return f(ctx, city) }

// Report is the weather of a city.
type Report struct {
	City        string
	Celsius     float64
	Description string
}

func (r Report) String() string {
	s := fmt.Sprintf("Weather in %s: %.1f °C", r.City, r.Celsius)
	if r.Description != "" {
		s += ", " + r.Description
	}
	return s
}

// Store is what [Bot.Run] needs of the chat's store: follow new messages
// and post its answers (as itself only).
type Store interface {
	Position(ctx context.Context) (store.Position, error)
	Follow(ctx context.Context, pos store.Position, fn func(store.Event) error) error
	CreateMessage(ctx context.Context, m store.NewMessage) (store.Message, error)
}

// Bot answers chat commands. Make one with [New].
type Bot struct {
	fortune Fortuner
	weather Weatherer
	cfg     config
}

// New returns a bot asking fortune for /fortune and weather for /weather;
// either may be nil, and its command then answers that it is not set up.
func New(fortune Fortuner, weather Weatherer, opts ...Option) *Bot {
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	return &Bot{fortune: fortune, weather: weather, cfg: cfg}
}

const help = "I know /fortune (a fortune cookie), /weather <city> (the weather now) and /help."

// Reply returns the bot's answer to a message's text, and false when the
// text is no command. Each question to a getter is bounded by the bot's
// timeout ([WithTimeout]); a failure is answered, never returned. What
// the getters say (a fortune, the weather API's words) is theirs, not
// checked by anyone: the answer keeps no control character but newline
// and tab, so that a NUL cannot make the store refuse it nor an escape
// sequence reach a terminal.
func (b *Bot) Reply(ctx context.Context, text string) (string, bool) {
	reply, ok := b.reply(ctx, text)
	return printable(reply), ok
}

// printable drops the control characters of s but newline and tab.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return -1
		}
		return r
	}, s)
}

func (b *Bot) reply(ctx context.Context, text string) (string, bool) {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "/") {
		return "", false
	}
	cmd, arg, _ := strings.Cut(text, " ")
	cmd, arg = strings.ToLower(cmd), strings.TrimSpace(arg)
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	switch cmd {
	case "/fortune":
		if b.fortune == nil {
			return "Sorry, /fortune is not set up here.", true
		}
		f, err := b.fortune.Fortune(ctx)
		if err == nil && strings.TrimSpace(f) == "" {
			err = errors.New("the fortune was empty")
		}
		if err != nil {
			return fmt.Sprintf("Sorry, /fortune failed: %v", err), true
		}
		return store.CutText("🥠 " + strings.TrimRight(f, "\n")), true
	case "/weather":
		if arg == "" {
			return "Which city? Say /weather <city>, e.g. /weather Paris.", true
		}
		if utf8.RuneCountInString(arg) > 100 {
			return "That city name is too long.", true
		}
		if b.weather == nil {
			return "Sorry, /weather is not set up here.", true
		}
		r, err := b.weather.Weather(ctx, arg)
		if err != nil {
			return store.CutText(fmt.Sprintf("Sorry, /weather %s failed: %v", arg, err)), true
		}
		return store.CutText(r.String()), true
	case "/help":
		return help, true
	default:
		return store.CutText(fmt.Sprintf("I don't know %s. %s", cmd, help)), true
	}
}

// Run follows st from now on and answers every command not written by
// the bot itself (botID) as botID, until ctx is done; it then returns nil.
// Answers are worked out concurrently (a slow API delays only its own
// answer). When following fails, Run logs, waits and resumes where it
// stopped.
func (b *Bot) Run(ctx context.Context, st Store, botID int64) error {
	var (
		pos     store.Position
		started bool
		wait    = 100 * time.Millisecond
		wg      sync.WaitGroup
		slots   = make(chan struct{}, b.cfg.concurrency)
	)
	defer wg.Wait()
	for {
		var err error
		if !started {
			if pos, err = st.Position(ctx); err == nil {
				started = true
				b.cfg.started()
			}
		}
		if started {
			err = st.Follow(ctx, pos, func(ev store.Event) error {
				wait = 100 * time.Millisecond
				if ev.User != nil {
					pos.UserID = max(pos.UserID, ev.User.ID)
				}
				m := ev.Message
				if m == nil {
					return nil
				}
				pos.MessageID = max(pos.MessageID, m.ID)
				if m.UserID == botID || !strings.HasPrefix(strings.TrimSpace(m.Text), "/") {
					return nil
				}
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return ctx.Err()
				}
				wg.Go(func() {
					defer func() { <-slots }()
					b.answer(ctx, st, botID, *m)
				})
				return nil
			})
		}
		if ctx.Err() != nil {
			return nil
		}
		b.cfg.logger.Warn("chat bot: following the store failed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// answer works out and posts the answer to m, in a span that continues
// the trace m was posted in (m.TraceParent), so that asking the fortune
// service and posting the answer are part of the user's action.
func (b *Bot) answer(ctx context.Context, st Store, botID int64, m store.Message) {
	if m.TraceParent != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": m.TraceParent})
	}
	ctx, span := b.cfg.tracer.Tracer(tracerName).Start(ctx, "chat-bot answer",
		trace.WithAttributes(attribute.Int64("chat.message.id", m.ID)))
	defer span.End()
	reply, ok := b.Reply(ctx, m.Text)
	if !ok {
		return
	}
	_, err := st.CreateMessage(ctx, store.NewMessage{Text: reply, UserID: botID, CreatedAt: b.cfg.now().UnixMilli()})
	if err != nil && ctx.Err() == nil {
		span.SetStatus(codes.Error, err.Error())
		b.cfg.logger.Error("chat bot: posting the answer failed", "to", m.ID, "err", err)
	}
}

// tracerName is the instrumentation scope of the bot's spans.
const tracerName = "github.com/ztnlabs/ztn/examples/chat/internal/bot"

// DefaultEmail is the bot user's email.
const DefaultEmail = "bot@chat.invalid"

// UserStore is what [EnsureUser] needs of the chat's store.
type UserStore interface {
	CreateUser(ctx context.Context, u store.NewUser) (store.User, error)
	Credentials(ctx context.Context, email string) (store.User, string, error)
}

// EnsureUser returns the bot's user, creating it if needed. The user has
// no password hash, so nobody can sign in as the bot.
func EnsureUser(ctx context.Context, st UserStore, email string) (store.User, error) {
	for range 2 {
		u, _, err := st.Credentials(ctx, email)
		if err == nil {
			return u, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.User{}, fmt.Errorf("chat bot: user %s: %w", email, err)
		}
		u, err = st.CreateUser(ctx, store.NewUser{Email: email, Avatar: botAvatar})
		if err == nil {
			return u, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return store.User{}, fmt.Errorf("chat bot: create user %s: %w", email, err)
		}
		// Another bot instance made it first: read it.
	}
	return store.User{}, fmt.Errorf("chat bot: user %s: created and gone again", email)
}

// botAvatar is a robot picture from gravatar.
const botAvatar = "https://s.gravatar.com/avatar/00000000000000000000000000000000?s=60&d=robohash&f=y"
