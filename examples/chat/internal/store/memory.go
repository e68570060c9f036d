package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Memory is a [Store] that keeps everything in memory; the zero value is
// not usable, make one with [NewMemory].
type Memory struct {
	mu       sync.Mutex
	users    []memUser // in ID order
	messages []memMessage
	lastUser int64
	lastMsg  int64
	changed  chan struct{} // closed and replaced on every create
}

type memUser struct {
	User
	hash string
}

// memMessage is a stored message without its resolved user.
type memMessage struct {
	ID int64
	NewMessage
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{changed: make(chan struct{})}
}

func (m *Memory) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *Memory) userIndexLocked(id int64) int {
	i, ok := slices.BinarySearchFunc(m.users, id, func(u memUser, id int64) int { return cmp.Compare(u.ID, id) })
	if !ok {
		return -1
	}
	return i
}

func (m *Memory) msgIndexLocked(id int64) int {
	i, ok := slices.BinarySearchFunc(m.messages, id, func(x memMessage, id int64) int { return cmp.Compare(x.ID, id) })
	if !ok {
		return -1
	}
	return i
}

func (m *Memory) resolveLocked(x memMessage) Message {
	msg := Message{ID: x.ID, Text: x.Text, UserID: x.UserID, CreatedAt: x.CreatedAt, TraceParent: x.TraceParent}
	if i := m.userIndexLocked(x.UserID); i >= 0 {
		msg.User = m.users[i].User
	}
	return msg
}

// CreateUser implements [Store.CreateUser].
func (m *Memory) CreateUser(ctx context.Context, u NewUser) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.users {
		if x.Email == u.Email {
			return User{}, fmt.Errorf("store: %q: %w", u.Email, ErrConflict)
		}
	}
	m.lastUser++
	nu := memUser{User: User{ID: m.lastUser, Email: u.Email, Avatar: u.Avatar}, hash: u.PasswordHash}
	m.users = append(m.users, nu)
	m.notifyLocked()
	return nu.User, nil
}

// User implements [Store.User].
func (m *Memory) User(ctx context.Context, id int64) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.userIndexLocked(id)
	if i < 0 {
		return User{}, fmt.Errorf("store: user %d: %w", id, ErrNotFound)
	}
	return m.users[i].User, nil
}

// Credentials implements [Store.Credentials].
func (m *Memory) Credentials(ctx context.Context, email string) (User, string, error) {
	if err := ctx.Err(); err != nil {
		return User{}, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.users {
		if x.Email == email {
			return x.User, x.hash, nil
		}
	}
	return User{}, "", fmt.Errorf("store: user %q: %w", email, ErrNotFound)
}

// FindUsers implements [Store.FindUsers].
func (m *Memory) FindUsers(ctx context.Context, q Query) (Page[User], error) {
	if err := ctx.Err(); err != nil {
		return Page[User]{}, err
	}
	if err := CheckUserQuery(q); err != nil {
		return Page[User]{}, err
	}
	m.mu.Lock()
	all := make([]User, 0, len(m.users))
	for _, x := range m.users {
		if q.UserID == 0 || x.ID == q.UserID {
			all = append(all, x.User)
		}
	}
	m.mu.Unlock()
	return page(all, q, func(a, b User, field string) int {
		switch field {
		case "email":
			return strings.Compare(a.Email, b.Email)
		default:
			return cmp.Compare(a.ID, b.ID)
		}
	}, func(u User) int64 { return u.ID }), nil
}

// PatchUser implements [Store.PatchUser].
func (m *Memory) PatchUser(ctx context.Context, id int64, p UserPatch) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.userIndexLocked(id)
	if i < 0 {
		return User{}, fmt.Errorf("store: user %d: %w", id, ErrNotFound)
	}
	if p.Email != nil && *p.Email != m.users[i].Email {
		for _, x := range m.users {
			if x.Email == *p.Email {
				return User{}, fmt.Errorf("store: %q: %w", *p.Email, ErrConflict)
			}
		}
		m.users[i].Email = *p.Email
	}
	if p.PasswordHash != nil {
		m.users[i].hash = *p.PasswordHash
	}
	if p.Avatar != nil {
		m.users[i].Avatar = *p.Avatar
	}
	return m.users[i].User, nil
}

// RemoveUser implements [Store.RemoveUser].
func (m *Memory) RemoveUser(ctx context.Context, id int64) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.userIndexLocked(id)
	if i < 0 {
		return User{}, fmt.Errorf("store: user %d: %w", id, ErrNotFound)
	}
	u := m.users[i].User
	m.users = slices.Delete(m.users, i, i+1)
	m.messages = slices.DeleteFunc(m.messages, func(x memMessage) bool { return x.UserID == id })
	return u, nil
}

// CreateMessage implements [Store.CreateMessage].
func (m *Memory) CreateMessage(ctx context.Context, nm NewMessage) (Message, error) {
	if err := ctx.Err(); err != nil {
		return Message{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.userIndexLocked(nm.UserID) < 0 {
		return Message{}, fmt.Errorf("store: user %d: %w", nm.UserID, ErrNotFound)
	}
	m.lastMsg++
	x := memMessage{ID: m.lastMsg, NewMessage: nm}
	m.messages = append(m.messages, x)
	m.notifyLocked()
	return m.resolveLocked(x), nil
}

// Message implements [Store.Message].
func (m *Memory) Message(ctx context.Context, id int64) (Message, error) {
	if err := ctx.Err(); err != nil {
		return Message{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.msgIndexLocked(id)
	if i < 0 {
		return Message{}, fmt.Errorf("store: message %d: %w", id, ErrNotFound)
	}
	return m.resolveLocked(m.messages[i]), nil
}

// FindMessages implements [Store.FindMessages].
func (m *Memory) FindMessages(ctx context.Context, q Query) (Page[Message], error) {
	if err := ctx.Err(); err != nil {
		return Page[Message]{}, err
	}
	if err := CheckMessageQuery(q); err != nil {
		return Page[Message]{}, err
	}
	m.mu.Lock()
	all := make([]Message, 0, len(m.messages))
	for _, x := range m.messages {
		if q.UserID == 0 || x.UserID == q.UserID {
			all = append(all, m.resolveLocked(x))
		}
	}
	m.mu.Unlock()
	return page(all, q, func(a, b Message, field string) int {
		switch field {
		case "text":
			return strings.Compare(a.Text, b.Text)
		case "createdAt":
			return cmp.Compare(a.CreatedAt, b.CreatedAt)
		case "userId":
			return cmp.Compare(a.UserID, b.UserID)
		default:
			return cmp.Compare(a.ID, b.ID)
		}
	}, func(x Message) int64 { return x.ID }), nil
}

// CountMessages implements [Store.CountMessages].
func (m *Memory) CountMessages(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.messages), nil
}

// PatchMessage implements [Store.PatchMessage].
func (m *Memory) PatchMessage(ctx context.Context, id int64, text string) (Message, error) {
	if err := ctx.Err(); err != nil {
		return Message{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.msgIndexLocked(id)
	if i < 0 {
		return Message{}, fmt.Errorf("store: message %d: %w", id, ErrNotFound)
	}
	m.messages[i].Text = text
	return m.resolveLocked(m.messages[i]), nil
}

// RemoveMessage implements [Store.RemoveMessage].
func (m *Memory) RemoveMessage(ctx context.Context, id int64) (Message, error) {
	if err := ctx.Err(); err != nil {
		return Message{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.msgIndexLocked(id)
	if i < 0 {
		return Message{}, fmt.Errorf("store: message %d: %w", id, ErrNotFound)
	}
	msg := m.resolveLocked(m.messages[i])
	m.messages = slices.Delete(m.messages, i, i+1)
	return msg, nil
}

// Position implements [Store.Position].
func (m *Memory) Position(ctx context.Context) (Position, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return Position{UserID: m.lastUser, MessageID: m.lastMsg}, nil
}

// Follow implements [Store.Follow].
func (m *Memory) Follow(ctx context.Context, pos Position, fn func(Event) error) error {
	for {
		m.mu.Lock()
		var evs []Event
		for _, u := range m.users {
			if u.ID > pos.UserID {
				evs = append(evs, Event{User: &u.User})
			}
		}
		for _, x := range m.messages {
			if x.ID > pos.MessageID {
				msg := m.resolveLocked(x)
				evs = append(evs, Event{Message: &msg})
			}
		}
		pos = Position{UserID: m.lastUser, MessageID: m.lastMsg}
		changed := m.changed
		m.mu.Unlock()
		for _, ev := range evs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// page sorts all by q.Sort (ties by ID, see [Query]) and cuts the page out of it.
func page[T any](all []T, q Query, compare func(a, b T, field string) int, id func(T) int64) Page[T] {
	slices.SortStableFunc(all, func(a, b T) int {
		for _, s := range q.Sort {
			c := compare(a, b, s.Field)
			if s.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		if len(q.Sort) > 0 && q.Sort[0].Desc {
			return cmp.Compare(id(b), id(a))
		}
		return cmp.Compare(id(a), id(b))
	})
	p := Page[T]{Total: len(all), Limit: q.Limit, Skip: q.Skip, Data: []T{}}
	if q.Skip < len(all) {
		p.Data = all[q.Skip:min(len(all), q.Skip+q.Limit)]
	}
	return p
}
