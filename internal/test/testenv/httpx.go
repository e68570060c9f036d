package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// httpClient talks to the local servers: no proxy, short timeouts.
var httpClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	Timeout:   5 * time.Second,
}

// doJSON sends a request with an optional JSON body and headers (name, value
// pairs) and decodes a JSON answer into out (if non-nil and the status is 2xx).
// It returns the status and the raw body.
func doJSON(ctx context.Context, method, url string, in, out any, headers ...string) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] != "" {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, b, fmt.Errorf("%s %s: decode: %w", method, url, err)
		}
	}
	return resp.StatusCode, b, nil
}

// randomUUID returns a random (version 4) UUID, the form Consul wants for
// tokens and cluster IDs.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// waitFor polls check every 50ms until it returns true, the deadline passes or
// exited is closed. The last error from check is returned on failure.
func waitFor(timeout time.Duration, exited <-chan struct{}, check func(ctx context.Context) (bool, error)) error {
	return poll(timeout, 50*time.Millisecond, 2*time.Second, exited, check)
}

// poll calls check every interval, each call bounded by checkTimeout, until
// it returns true, timeout passes or exited is closed. The last error from
// check is returned on failure.
func poll(timeout, interval, checkTimeout time.Duration, exited <-chan struct{}, check func(ctx context.Context) (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		ok, err := check(ctx)
		cancel()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-exited:
			return fmt.Errorf("process exited (last check: %v)", last)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s (last check: %v)", timeout, last)
		}
		time.Sleep(interval)
	}
}

// getOK reports whether a GET of url answers 200 OK; when it does not, the
// error says what it answered.
func getOK(ctx context.Context, url string) (bool, error) {
	code, body, err := doJSON(ctx, http.MethodGet, url, nil, nil)
	if err != nil {
		return false, err
	}
	if code != http.StatusOK {
		return false, fmt.Errorf("GET %s: %d %.200q", url, code, body)
	}
	return true, nil
}

// pollResult calls get every 250ms until done accepts what it returns, or
// timeout passes; it returns the last result get gave and, on a timeout,
// the error of poll.
func pollResult[T any](timeout time.Duration, get func(context.Context) (T, error), done func(T) bool) (T, error) {
	var last T
	err := poll(timeout, 250*time.Millisecond, 5*time.Second, nil, func(ctx context.Context) (bool, error) {
		r, err := get(ctx)
		if err != nil {
			return false, err
		}
		last = r
		return done(r), nil
	})
	return last, err
}
