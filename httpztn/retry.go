package httpztn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// RetryPolicy says when a request that failed on one instance is sent
// again to another instance of the same service, like the retry policy of
// an Envoy or AWS App Mesh route. Give it to a Transport or client with
// [WithRetry], or to a gateway route as [Route].Retry. The zero
// RetryPolicy retries nothing.
//
// A request is retried only when sending it twice does no harm: its method
// is GET, HEAD, OPTIONS or TRACE, or it carries an Idempotency-Key (or
// X-Idempotency-Key) header, as net/http decides for its own retries; and it
// has no body, or a body the Transport can read again (Request.GetBody,
// which http.NewRequest sets for a bytes.Buffer, bytes.Reader or
// strings.Reader). A POST without such a header is never retried.
//
// It is retried after any of these, the App Mesh walkthrough's
// {httpRetryEvents: [server-error, gateway-error], tcpRetryEvents:
// [connection-error]} plus the per-try timeout:
//
//   - a response with a 5xx status (500 to 599): the response is discarded,
//     unless it comes from the last attempt allowed, which is returned as it
//     is;
//   - a connection error after the request was sent (the connection reset
//     or closed before the response header arrived, the stream reset), or,
//     with BufferBody, before the end of a body it holds back;
//   - no response header within PerTryTimeout.
//
// Each retry goes to an instance the request has not tried yet, in the
// order the Transport picks them (round robin, or the resolver's when it
// is a [discovery.Picker] that ejects failing instances), and there are at
// most MaxRetries of them, and no more than the other instances: with two
// instances a request is sent at most twice.
//
// A connection that cannot be made (the instance is down, refuses the
// connection, or does not finish the handshake within PerTryTimeout) is
// not a retry: nothing was sent, so the Transport always moves on to the
// next instance, for any method, whenever the body can be sent again (and
// whatever the policy), until an instance answers or every one failed. A
// refusal by the service's intentions ([*ztnet.DeniedError]) is not retried:
// every instance has the same policy.
//
// Every retry is counted in the ztn.http.retries counter of the Service's
// meter provider (attributes service, destination, reason:
// "server-error", "connection-error" or "per-try-timeout") and logged at
// Debug ("ztn http retry") on the Service's logger. The request's context
// bounds all attempts together.
type RetryPolicy struct {
	// MaxRetries is how many times at most a request is sent again, each
	// time to another instance; 0 retries nothing.
	MaxRetries int
	// PerTryTimeout bounds each attempt, from dialing (when a connection
	// must be made) to the response header; once the header has arrived,
	// reading the body is bounded by the request's context only. An
	// attempt that times out is retried as a failed one when the request
	// may be retried, and fails the request otherwise. 0 means no bound
	// but the request's context.
	PerTryTimeout time.Duration
	// BufferBody, when above 0, holds back the response to a request that
	// may be retried until its body has arrived whole, when its
	// Content-Length says it is at most BufferBody bytes long: an instance
	// that dies or resets the stream after its response header but before
	// the end of such a body is retried like one that failed before the
	// header (reason "connection-error"), instead of handing the caller a
	// body that breaks off, which a proxy can only pass on as a broken
	// response. The wait for the body counts in PerTryTimeout. A longer
	// body, or one of unknown length (a stream, such as server-sent
	// events), is returned as soon as its header arrives, as is every
	// response when BufferBody is 0 (Envoy's behaviour). Go servers send a
	// Content-Length with every small answer a handler writes without
	// flushing.
	BufferBody int
}

// idempotent reports whether r may be sent twice, as net/http's Transport
// decides for its own retries: a method that changes nothing, or a request
// that carries an idempotency key.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	if _, ok := r.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := r.Header["X-Idempotency-Key"]
	return ok
}

// replay returns the request of another attempt: out itself without a
// body, or a copy of it with a new body from req.GetBody (the previous
// attempt consumed or closed the body).
func replay(req, out *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return out, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	again := *out
	again.Body = body
	return &again, nil
}

// send makes one attempt of req on the instance's pool, bounded by perTry
// (when not zero) until the response header arrives and, when buffer is
// above 0, until a body of at most buffer bytes has arrived whole (see
// RetryPolicy.BufferBody).
func (it *instanceTransport) send(req *http.Request, perTry time.Duration, buffer int) (*http.Response, error) {
	if perTry <= 0 && buffer <= 0 {
		return it.rt.RoundTrip(req)
	}
	ctx, cancel := context.WithCancel(req.Context())
	var timer *time.Timer
	if perTry > 0 {
		timer = time.AfterFunc(perTry, cancel)
	}
	resp, err := it.rt.RoundTrip(req.WithContext(ctx))
	if err == nil && buffer > 0 {
		err = bufferBody(resp, buffer)
	}
	if timer != nil && !timer.Stop() { // it fired: the attempt failed, whatever it returned
		cancel()
		if err == nil {
			_ = resp.Body.Close()
		}
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		timeout := &perTryTimeoutError{d: perTry}
		if errors.As(err, new(*dialError)) {
			return nil, &dialError{timeout}
		}
		return nil, timeout
	}
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose(resp.Body, cancel)
	return resp, nil
}

// bodyError is the error of an attempt whose response body broke off
// before the end of the part RetryPolicy.BufferBody holds back.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "response body cut short: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// bufferBody reads resp's body whole into memory when its Content-Length
// says it is at most limit bytes; resp.Body then reads what was held back.
// A body that breaks off before is an error, and resp's body is closed.
func bufferBody(resp *http.Response, limit int) error {
	switch {
	case resp.StatusCode == http.StatusSwitchingProtocols, resp.StatusCode >= 500, // retried without its body
		resp.ContentLength < 0, resp.ContentLength > int64(limit), // a stream, or too long to hold back
		resp.Body == nil, resp.Body == http.NoBody:
		return nil
	}
	held, err := io.ReadAll(resp.Body) // net/http stops at Content-Length
	_ = resp.Body.Close()
	if err != nil {
		return &bodyError{err}
	}
	resp.Body = io.NopCloser(bytes.NewReader(held))
	return nil
}

// perTryTimeoutError is the error of an attempt that had no response
// header within the retry policy's PerTryTimeout. errors.Is finds
// context.DeadlineExceeded in it, and it is a timeout (net.Error).
type perTryTimeoutError struct{ d time.Duration }

func (e *perTryTimeoutError) Error() string {
	return "no answer within the per-try timeout (" + e.d.String() + ")"
}
func (e *perTryTimeoutError) Timeout() bool        { return true }
func (e *perTryTimeoutError) Temporary() bool      { return true }
func (e *perTryTimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// cancelOnClose returns body, which calls cancel once it is closed or read
// to its end. The body of a 101 Switching Protocols response stays
// writable.
func cancelOnClose(body io.ReadCloser, cancel context.CancelFunc) io.ReadCloser {
	b := cancelBody{ReadCloser: body, cancel: cancel}
	if w, ok := body.(io.Writer); ok {
		return &cancelRWBody{cancelBody: b, w: w}
	}
	return &b
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.cancel()
	}
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

type cancelRWBody struct {
	cancelBody
	w io.Writer
}

func (b *cancelRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }

// maxDiscard bounds how much of a retried response's body is read, so
// that its connection can be reused, before it is closed.
const maxDiscard = 64 << 10

// discardBody reads a little of resp's body and closes it.
func discardBody(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, maxDiscard)
	_ = resp.Body.Close()
}

// retried counts a retry of a request to service whose attempt on it
// failed for reason, and logs it at Debug with detail (the status or the
// error).
func (t *transport) retried(ctx context.Context, service string, it *instanceTransport, n int, reason string, detail slog.Attr) {
	t.retries.Add(ctx, 1, metric.WithAttributes(t.svcAttr,
		attribute.String("destination", service), attribute.String("reason", reason)))
	t.log.LogAttrs(ctx, slog.LevelDebug, "ztn http retry",
		slog.String("destination", service),
		slog.String("instance", it.in.Address),
		slog.Int("retry", n),
		slog.String("reason", reason),
		detail)
}

// requestError is the error of a request that failed on every instance it
// tried; it is a timeout (net.Error) when its cause is one, so that
// url.Error's Timeout says so too.
type requestError struct {
	msg string
	err error
}

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return e.err }

// Timeout reports whether the request failed because an attempt timed out.
func (e *requestError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.err, &t) && t.Timeout()
}
