package discovery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
)

// Static is a Resolver over instances given in code. It is also a Registrar,
// so listeners of an in-process mesh (ztnet's dev mode, tests) appear in it as
// they open and disappear as they close. It is safe for concurrent use.
type Static struct {
	mu        sync.RWMutex
	instances map[string][]Instance // each slice is replaced, never modified
}

// NewStatic returns a resolver that knows the given instances.
func NewStatic(services map[string][]Instance) *Static {
	s := &Static{instances: make(map[string][]Instance, len(services))}
	for name, in := range services {
		s.Set(name, in...)
	}
	return s
}

// Resolve returns the instances of service; none (and no error) when it has
// none. The returned slice must not be modified.
func (s *Static) Resolve(ctx context.Context, service string) ([]Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discovery: resolve %s: %w", service, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.instances[service], nil
}

// Set replaces the instances of service.
func (s *Static) Set(service string, instances ...Instance) {
	in := slices.Clone(instances)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(in) == 0 {
		delete(s.instances, service)
		return
	}
	s.instances[service] = in
}

// Register adds an instance; the returned function removes it.
func (s *Static) Register(ctx context.Context, r Registration) (func(context.Context) error, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discovery: register %s: %w", r.Service, err)
	}
	if r.Service == "" {
		return nil, errors.New("discovery: register: empty service name")
	}
	if _, _, err := net.SplitHostPort(r.Address); err != nil {
		return nil, fmt.Errorf("discovery: register %s: address %q: %w", r.Service, r.Address, err)
	}
	if r.ID == "" {
		r.ID = r.Service + "-" + randomSuffix()
	}
	in := Instance{ID: r.ID, Address: r.Address, Meta: r.Meta}
	s.mu.Lock()
	for _, old := range s.instances[r.Service] {
		if old.ID == r.ID {
			s.mu.Unlock()
			return nil, fmt.Errorf("discovery: register %s: instance %q already registered", r.Service, r.ID)
		}
	}
	s.instances[r.Service] = append(slices.Clone(s.instances[r.Service]), in)
	s.mu.Unlock()
	var once sync.Once
	return func(context.Context) error {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			rest := slices.DeleteFunc(slices.Clone(s.instances[r.Service]), func(i Instance) bool { return i.ID == r.ID })
			if len(rest) == 0 {
				delete(s.instances, r.Service)
			} else {
				s.instances[r.Service] = rest
			}
		})
		return nil
	}, nil
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
