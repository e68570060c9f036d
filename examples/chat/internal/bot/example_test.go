package bot_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ztnlabs/ztn/examples/chat/internal/bot"
)

// The bot's answers, with getters that stand in for the fortune service
// and a weather API that is down.
func ExampleBot_Reply() {
	fortune := bot.FortunerFunc(func(context.Context) (string, error) {
		return "Trust, but verify.\n", nil
	})
	weather := bot.WeathererFunc(func(context.Context, string) (bot.Report, error) {
		return bot.Report{}, errors.New("weather API: 503 Service Unavailable")
	})
	b := bot.New(fortune, weather)
	for _, text := range []string{"hello", "/fortune", "/weather Oslo"} {
		answer, ok := b.Reply(context.Background(), text)
		fmt.Printf("%q -> %t %q\n", text, ok, answer)
	}
	// Output:
	// "hello" -> false ""
	// "/fortune" -> true "🥠 Trust, but verify."
	// "/weather Oslo" -> true "Sorry, /weather Oslo failed: weather API: 503 Service Unavailable"
}
