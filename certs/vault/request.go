package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/hashicorp/vault/api"
)

// envelope is Vault's response body.
type envelope struct {
	Data     json.RawMessage `json:"data"`
	Warnings []string        `json:"warnings"`
}

// do sends a request to /v1/<path> and decodes the response's data into out.
func (v *issuer) do(ctx context.Context, method, path string, in, out any) error {
	_, err := v.doWarn(ctx, method, path, in, out)
	return err
}

func (v *issuer) doWarn(ctx context.Context, method, path string, in, out any) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	r := v.client.NewRequest(method, "/v1/"+path)
	if method == "LIST" {
		r.Method = http.MethodGet
		r.Params.Set("list", "true")
	}
	if in != nil {
		if err := r.SetJSONBody(in); err != nil {
			return nil, err
		}
	}
	resp, err := v.client.RawRequestWithContext(ctx, r)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("malformed response (HTTP %d): %v", resp.StatusCode, err)
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return env.Warnings, fmt.Errorf("malformed response (HTTP %d): no data", resp.StatusCode)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return env.Warnings, fmt.Errorf("malformed response (HTTP %d): %v", resp.StatusCode, err)
	}
	return env.Warnings, nil
}

// describeError makes a vault/api error one readable line.
func describeError(addr string, err error) error {
	var re *api.ResponseError
	switch {
	case errors.As(err, &re):
		msg := errorMessages(re)
		switch {
		case re.StatusCode == http.StatusForbidden && strings.Contains(msg, "invalid token"):
			return fmt.Errorf("Vault rejects the token (invalid, expired or revoked): %s", msg)
		case re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("permission denied (check the token's policy): %s", msg)
		case re.StatusCode == http.StatusServiceUnavailable:
			return fmt.Errorf("Vault is unavailable (sealed or in standby?): %s", msg)
		}
		return fmt.Errorf("HTTP %d: %s", re.StatusCode, msg)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("cannot reach Vault at %s: %w", addr, ue.Err)
	}
	return err
}

// errorMessages returns the errors of a Vault response on one line. Vault
// nests multi-errors as "2 errors occurred:\n\t* a\n\t* b".
func errorMessages(re *api.ResponseError) string {
	var out []string
	for _, e := range re.Errors {
		for _, line := range strings.Split(e, "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "* "))
			if line == "" || strings.HasSuffix(line, "occurred:") || slices.Contains(out, line) {
				continue
			}
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return http.StatusText(re.StatusCode)
	}
	return strings.Join(out, "; ")
}
