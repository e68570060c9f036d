// Package fortune is the fortune-cookie service of the "securing bare metal"
// walkthrough, shared by the examples: [Serve] answers every connection with
// one fortune and closes it, as the original
// `socat tcp-l:8181,fork exec:/usr/games/fortune` does, and [Read] is the
// client's side. examples/fortune runs it alone; examples/chat's bot asks it
// for /fortune.
package fortune

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"time"
)

// fortunes is the built-in list used when /usr/games/fortune is absent.
var fortunes = []string{
	"You will be successful in your work.",
	"A journey of a thousand miles begins with a single step.\n\t\t-- Lao Tzu",
	"Trust, but verify.",
	"Never trust a network you did not build. Then again, never trust one you did.",
	"The best way to predict the future is to invent it.\n\t\t-- Alan Kay",
	"Today is a good day to rotate your certificates.",
	"If it is not authenticated, it did not happen.",
	"Simplicity is prerequisite for reliability.\n\t\t-- Edsger W. Dijkstra",
	"You have a deep interest in all that is cryptographic.",
	"Beware of strangers bearing self-signed certificates.",
}

// fortuneBinary is where Debian's fortune-mod installs the program.
const fortuneBinary = "/usr/games/fortune"

// Tell returns one fortune, newline-terminated: the output of one run of
// /usr/games/fortune when it is installed, a built-in one otherwise.
func Tell(ctx context.Context) []byte {
	if _, err := os.Stat(fortuneBinary); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, fortuneBinary, "-s").Output(); err == nil && len(out) > 0 {
			return out
		}
	}
	return []byte(fortunes[rand.IntN(len(fortunes))] + "\n")
}

// Serve answers every connection l accepts the way the original
// `socat tcp-l:8181,fork exec:/usr/games/fortune` does: one fortune, then
// close. Whatever the client sends is ignored. It returns Accept's error
// (when l is closed); ctx bounds each run of /usr/games/fortune.
func Serve(ctx context.Context, l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Write(Tell(ctx))
		}()
	}
}

// Read reads one fortune from a connection to the service: everything until
// the server closes (at most 64 KiB, within 5 s).
func Read(c net.Conn) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(io.LimitReader(c, 64<<10))
	return string(b), err
}
