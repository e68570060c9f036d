package authz

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ztnlabs/ztn/internal/notify"
)

// Policy is a set of intentions held in memory, and the [Authorizer] that
// evaluates them. Its intentions come from [Policy.Set] or
// [Policy.LoadFile], which replace them all at once; Authorize reads an
// immutable snapshot without locks and without allocating (for a
// connection-level request).
//
// Until the first successful Set or LoadFile, every request is denied ("policy
// not synced yet"). When no intention matches, the default applies: deny,
// unless the Policy was made [WithDefaultAllow].
//
// The zero Policy is usable and denies by default. A Policy is safe for
// concurrent use.
type Policy struct {
	defaultAllow bool

	snap    atomic.Pointer[snapshot]
	changed notify.Broadcast

	mu   sync.Mutex // serializes changes
	path string     // the file of the last LoadFile, for Reload
}

var _ Authorizer = (*Policy)(nil)

// NewPolicy returns a Policy with no intentions, not yet synced.
func NewPolicy(opts ...Option) *Policy {
	var c policyConfig
	for _, o := range opts {
		o(&c)
	}
	return &Policy{defaultAllow: c.defaultAllow}
}

// Authorize decides req; see [Policy] and [Request].
func (p *Policy) Authorize(req Request) Decision {
	s := p.snap.Load()
	if s == nil {
		return Decision{kind: reasonNotSynced}
	}
	return s.authorize(&req, p.defaultAllow)
}

// Set replaces every intention with those of entries, at most one entry per
// destination. It validates them all first: on error nothing changes. After
// a successful Set the Policy is synced and Changed channels are closed.
// Set() with no entries is valid: nothing matches and the default applies.
func (p *Policy) Set(entries ...ConfigEntry) error {
	rules, err := compileAll(entries)
	if err != nil {
		return fmt.Errorf("authz: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.install(rules)
	return nil
}

// LoadFile replaces every intention with the entries in the file at path
// (see ParseConfigEntries), as Set does, and remembers path for Reload.
func (p *Policy) LoadFile(path string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.load(path); err != nil {
		return err
	}
	p.path = path
	return nil
}

// Reload reads the file of the last successful LoadFile again. On error the
// intentions in force are kept.
func (p *Policy) Reload() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.path == "" {
		return errors.New("authz: Reload: no file was loaded")
	}
	return p.load(p.path)
}

func (p *Policy) load(path string) error {
	entries, err := readFile(path)
	if err == nil {
		var rules []*rule
		if rules, err = compileAll(entries); err == nil {
			p.install(rules)
			return nil
		}
	}
	return fmt.Errorf("authz: %s: %w", path, err)
}

// install publishes a new snapshot; p.mu is held.
func (p *Policy) install(rules []*rule) {
	p.snap.Store(newSnapshot(rules))
	p.changed.Notify()
}

// Synced reports whether intentions have been set at least once.
func (p *Policy) Synced() bool { return p.snap.Load() != nil }

// Ready reports whether the policy can decide: nil once intentions have been
// set or loaded (even none), an error before, while it denies everything.
func (p *Policy) Ready() error {
	if !p.Synced() {
		return errors.New("authz: no intentions set or loaded yet: denying everything")
	}
	return nil
}

// Changed returns a channel that is closed at the next successful change of
// the intentions (Set, LoadFile, Reload). Take it before reading what it
// guards: ch := p.Changed(); re-check connections; <-ch.
func (p *Policy) Changed() <-chan struct{} { return p.changed.Changed() }

// Intentions returns every intention in force, in evaluation order (as
// Consul's IntentionPrecedenceSorter orders them). The slices they hold are
// shared and must not be modified.
func (p *Policy) Intentions() []Intention {
	s := p.snap.Load()
	if s == nil {
		return nil
	}
	out := make([]Intention, len(s.rules))
	for i, r := range s.rules {
		out[i] = r.Intention
	}
	return out
}
