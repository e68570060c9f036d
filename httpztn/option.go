package httpztn

// Option configures a [Transport]: give options to [NewTransport] or
// [NewClient].
type Option func(*config)

// config is what the options of a Transport set.
type config struct {
	http1          bool
	crossRedirects bool
	retry          RetryPolicy
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// WithHTTP1 makes the Transport speak HTTP/1.1 (ALPN "ztn/1+http/1.1")
// instead of HTTP/2.
func WithHTTP1() Option { return func(c *config) { c.http1 = true } }

// WithCrossServiceRedirects lets the Transport follow a redirect from one
// service to another (under the caller's identity, as any request it
// makes); by default such a redirect is refused.
func WithCrossServiceRedirects() Option {
	return func(c *config) { c.crossRedirects = true }
}

// WithRetry sets the Transport's retry policy: a request that failed on one
// instance (a 5xx answer, a connection error after it was sent, no answer
// within p.PerTryTimeout) is sent again to another instance, at most
// p.MaxRetries times, when it may be sent twice (see [RetryPolicy]):
//
//	c := httpztn.NewClient(svc, httpztn.WithRetry(httpztn.RetryPolicy{
//		MaxRetries:    2,
//		PerTryTimeout: 2 * time.Second,
//	}))
//
// By default nothing is retried (a connection that could not be made is
// still tried on the next instance: nothing was sent).
func WithRetry(p RetryPolicy) Option { return func(c *config) { c.retry = p } }
