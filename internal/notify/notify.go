// Package notify is a broadcast of "something changed" to any number of
// waiters, without callbacks and without dropped notifications.
//
// A waiter takes Changed() before reading the state it watches and waits for
// that channel to close; the next Notify closes it.
package notify

import "sync"

// Broadcast wakes every waiter on each Notify. The zero value is ready.
type Broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// Changed returns a channel closed by the next Notify.
func (b *Broadcast) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// Notify wakes every waiter that took Changed before it.
func (b *Broadcast) Notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
