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

// Static is a [Resolver] over instances given in code. It is also a
// [Registrar], so listeners of an in-process mesh (ztnet's dev mode, tests)
// appear in it as they open and disappear as they close, and a [Watcher]
// that tells of each change at once. It is safe for concurrent use.
type Static struct {
	mu        sync.RWMutex
	instances map[string][]Instance // each slice is replaced, never modified
	waiters   map[string]chan struct{}
}

var (
	_ Resolver  = (*Static)(nil)
	_ Registrar = (*Static)(nil)
	_ Watcher   = (*Static)(nil)
)

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
	defer s.notify(service)
	if len(in) == 0 {
		delete(s.instances, service)
		return
	}
	s.instances[service] = in
}

// Changed returns a channel closed at the next change of the instances of
// service (Set, Register, or a deregistration).
func (s *Static) Changed(service string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.waiters[service]
	if ch == nil {
		if s.waiters == nil {
			s.waiters = make(map[string]chan struct{})
		}
		ch = make(chan struct{})
		s.waiters[service] = ch
	}
	return ch
}

// notify wakes the waiters of service; s.mu is held.
func (s *Static) notify(service string) {
	if ch := s.waiters[service]; ch != nil {
		close(ch)
		delete(s.waiters, service)
	}
}

// Register adds an instance; the returned function removes it. The
// instance's Healthy function is not consulted.
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
	s.notify(r.Service)
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
			s.notify(r.Service)
		})
		return nil
	}, nil
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
