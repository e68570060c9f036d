package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// maxFortune bounds what [DialFortune] reads.
const maxFortune = 16 << 10

// DialFortune returns a [Fortuner] that asks the fortune service: it
// opens a connection with dial and reads one fortune, everything until
// the service closes (the protocol of examples/fortune and of the
// original socat service).
func DialFortune(dial func(ctx context.Context) (net.Conn, error)) Fortuner {
	return FortunerFunc(func(ctx context.Context) (string, error) {
		c, err := dial(ctx)
		if err != nil {
			return "", fmt.Errorf("fortune service: %w", err)
		}
		defer c.Close()
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(10 * time.Second)
		}
		_ = c.SetDeadline(deadline)
		stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
		defer stop()
		b, err := io.ReadAll(io.LimitReader(c, maxFortune))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ok && !time.Now().Before(deadline) {
				err = context.DeadlineExceeded // ctx's deadline, set on the conn
			} else if ctx.Err() != nil {
				err = ctx.Err()
			}
			return "", fmt.Errorf("fortune service: read: %w", err)
		}
		return string(b), nil
	})
}
