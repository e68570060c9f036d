package consulca

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// query sends a GET; with index > 0 it is a blocking query waiting up to
// wait.
func (c *issuer) query(ctx context.Context, path string, out any, index uint64, wait time.Duration) (*api.QueryMeta, error) {
	timeout := c.timeout
	q := &api.QueryOptions{}
	if index > 0 {
		q.WaitIndex, q.WaitTime = index, wait
		timeout = wait + wait/16 + c.timeout // Consul adds up to wait/16 of jitter
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.client.Raw().Query(path, out, q.WithContext(ctx))
}

// describe makes a Consul API error one readable line.
func (c *issuer) describe(err error) error {
	var se api.StatusError
	if errors.As(err, &se) {
		body := strings.TrimSpace(se.Body)
		switch {
		case se.Code == 403:
			return fmt.Errorf("permission denied (the token needs service:write on %q): %s", c.service, body)
		case se.Code == 404 && strings.Contains(body, "CA"):
			return fmt.Errorf("Connect is not enabled on the agent: %s", body)
		}
		return fmt.Errorf("HTTP %d: %s", se.Code, body)
	}
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	if errors.As(err, &syntax) || errors.As(err, &typ) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("malformed response: %w", err)
	}
	var ue *url.Error
	if errors.As(err, &ue) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot reach the Consul agent: %w", ue.Err)
	}
	return err
}

func errOrString(err error, s string) any {
	if err != nil {
		return err
	}
	return s
}
