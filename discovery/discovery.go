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
