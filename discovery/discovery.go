package discovery

import "context"

// Instance is one reachable instance of a service.
type Instance struct {
	ID      string // unique per service, e.g. Consul's service ID
	Address string // host:port to dial
	Meta    map[string]string
}

// Resolver returns the healthy instances of a service. A Resolver backed by a
// control plane answers from a cache kept fresh in the background, so Resolve
// does not touch the network once warm.
type Resolver interface {
	Resolve(ctx context.Context, service string) ([]Instance, error)
}

// Watcher is implemented by a Resolver that can tell when the instances of
// a service may have changed, so that a client that keeps a service's
// instances (grpcztn's resolver) learns of a change at once rather than at
// its next poll. [Static] and Consul's catalog (package consul) are
// Watchers.
type Watcher interface {
	// Changed returns a channel that is closed when the instances of
	// service may have changed since the call. Take it before Resolve, and
	// resolve again once it is closed. A nil channel means no notice will
	// come (the resolver is closed, say).
	Changed(service string) <-chan struct{}
}

// Registration describes an instance to register.
type Registration struct {
	Service string
	ID      string // unique per service; generated when empty
	Address string // host:port where the instance listens
	Tags    []string
	Meta    map[string]string
	// Healthy reports whether the instance can serve (nil) or why not. A
	// registrar with health checks (Consul's TTL check) polls it and lets the
	// check fail when it returns an error. Nil means always healthy.
	Healthy func() error
}

// Registrar registers instances of services. Register returns a function
// that deregisters the instance.
type Registrar interface {
	Register(ctx context.Context, r Registration) (deregister func(context.Context) error, err error)
}
