package ztnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Environment variables read by NewEnv and the package-level Listen and Dial.
const (
	EnvDev         = "ZTN_DEV"          // "1": the embedded dev mesh (in-process only)
	EnvService     = "ZTN_SERVICE"      // the name this process dials as
	EnvIntentions  = "ZTN_INTENTIONS"   // a service-intentions JSON file for the dev mesh
	EnvTrustDomain = "ZTN_TRUST_DOMAIN" // dev mesh trust domain (default ztn.dev)
	EnvDatacenter  = "ZTN_DATACENTER"   // datacenter (default dc1)
	EnvCertTTL     = "ZTN_CERT_TTL"     // dev certificate lifetime, a Go duration (default 1h)
)

// Env is a mesh configured from environment variables, with one Service per
// name used. The package-level Listen and Dial use one, made on first use.
type Env struct {
	dev  *Dev
	self string

	mu       sync.Mutex
	services map[string]*Service
}

// NewEnv configures a mesh from the variables getenv returns (os.Getenv when
// nil). Missing or invalid settings give an error naming what to set; there
// is no silent fallback.
func NewEnv(getenv func(string) string) (*Env, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if getenv(EnvDev) != "1" {
		return nil, fmt.Errorf("ztnet: no mesh configured: set %s=1 for the embedded dev mesh", EnvDev)
	}
	var opts []DevOption
	if td := getenv(EnvTrustDomain); td != "" {
		opts = append(opts, WithDevTrustDomain(td))
	}
	if dc := getenv(EnvDatacenter); dc != "" {
		opts = append(opts, WithDevDatacenter(dc))
	}
	if v := getenv(EnvCertTTL); v != "" {
		ttl, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("ztnet: %s=%q: %w", EnvCertTTL, v, err)
		}
		opts = append(opts, WithDevCertTTL(ttl))
	}
	dev, err := NewDev(opts...)
	if err != nil {
		return nil, err
	}
	if f := getenv(EnvIntentions); f != "" {
		if err := dev.Policy().LoadFile(f); err != nil {
			return nil, fmt.Errorf("ztnet: %s: %w", EnvIntentions, err)
		}
	} else {
		dev.logger.Warn("ztn dev mesh has no intentions, so every connection is denied; set " + EnvIntentions + " to a service-intentions JSON file")
		if err := dev.Policy().Set(); err != nil {
			return nil, err
		}
	}
	return &Env{dev: dev, self: getenv(EnvService), services: make(map[string]*Service)}, nil
}

// Dev returns the embedded dev mesh, or nil.
func (e *Env) Dev() *Dev { return e.dev }

// Service returns the Service called name, making it on first use.
func (e *Env) Service(ctx context.Context, name string) (*Service, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.services[name]; s != nil {
		return s, nil
	}
	s, err := e.dev.Service(ctx, name)
	if err != nil {
		return nil, err
	}
	e.services[name] = s
	return s, nil
}

// Listen serves service on addr.
func (e *Env) Listen(ctx context.Context, service, addr string) (net.Listener, error) {
	s, err := e.Service(ctx, service)
	if err != nil {
		return nil, err
	}
	return s.Listen(ctx, "tcp", addr)
}

// Dial connects to service as the service named by ZTN_SERVICE.
func (e *Env) Dial(ctx context.Context, service string) (net.Conn, error) {
	if e.self == "" {
		return nil, fmt.Errorf("ztnet: dial %s: set %s to the name of the calling service", service, EnvService)
	}
	s, err := e.Service(ctx, e.self)
	if err != nil {
		return nil, err
	}
	return s.Dial(ctx, service)
}

// Close closes every Service of the environment.
func (e *Env) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for name, s := range e.services {
		errs = append(errs, s.Close())
		delete(e.services, name)
	}
	return errors.Join(errs...)
}

// The package-level functions share one Env, configured from the process
// environment on first use, like http.DefaultClient. Programs that want
// several meshes, or none of this, use Env, Dev or New directly.
var defaultEnv struct {
	once sync.Once
	env  *Env
	err  error
}

func environment() (*Env, error) {
	defaultEnv.once.Do(func() { defaultEnv.env, defaultEnv.err = NewEnv(nil) })
	return defaultEnv.env, defaultEnv.err
}

// Listen serves service on addr through the mesh configured by the
// environment (see NewEnv): ztnet.Listen(ctx, "fortune", ":8181").
func Listen(ctx context.Context, service, addr string) (net.Listener, error) {
	e, err := environment()
	if err != nil {
		return nil, err
	}
	return e.Listen(ctx, service, addr)
}

// Dial connects to service through the mesh configured by the environment,
// as the service named by ZTN_SERVICE: ztnet.Dial(ctx, "fortune").
func Dial(ctx context.Context, service string) (net.Conn, error) {
	e, err := environment()
	if err != nil {
		return nil, err
	}
	return e.Dial(ctx, service)
}
