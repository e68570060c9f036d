// Package store defines what the chat keeps: users and messages, and the
// stream of new ones that the web front ends and the bot follow.
//
// [Store] is the contract; [Memory] is an in-memory implementation for
// development and tests, and package pgstore keeps the same data in
// Postgres. Every implementation passes the suite in package storetest.
//
// # Records
//
// A [User] never carries its password hash: only [Store.Credentials], the
// method the sign-in path uses, returns it. A [Message] carries the [User]
// who wrote it, resolved by the store, so a page of messages needs one call.
//
// # Following
//
// IDs grow in the order records become visible, so a [Position] (the
// highest user and message ID seen) is enough to resume a [Store.Follow]
// without losing or repeating an event:
//
//	pos, err := st.Position(ctx)
//	if err != nil {
//		return err
//	}
//	err = st.Follow(ctx, pos, func(ev store.Event) error {
//		if ev.Message != nil {
//			fmt.Println(ev.Message.User.Email, "wrote", ev.Message.Text)
//		}
//		return nil
//	})
package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Errors a [Store] reports; implementations wrap them, callers test with
// [errors.Is].
var (
	// ErrNotFound: no record has the given ID (or email).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the email is already taken.
	ErrConflict = errors.New("email already taken")
	// ErrInvalid: the query or the data cannot be served (unknown sort
	// field, negative limit, ...).
	ErrInvalid = errors.New("invalid request")
	// ErrUnavailable: the store cannot be reached or refused the caller.
	// Adapters that put the store behind a network wrap their transport
	// errors with it, so the front end can say what failed.
	ErrUnavailable = errors.New("store unavailable")
)

// User is a chat user as everyone may see it: no password hash.
type User struct {
	ID     int64  `json:"id"`
	Email  string `json:"email"`
	Avatar string `json:"avatar"`
}

// NewUser is what [Store.CreateUser] needs. PasswordHash is a bcrypt hash
// (empty for a user who cannot sign in, such as the bot).
type NewUser struct {
	Email        string
	PasswordHash string
	Avatar       string
}

// UserPatch changes the fields that are not nil.
type UserPatch struct {
	Email        *string
	PasswordHash *string
	Avatar       *string
}

// Message is a chat message with its author.
type Message struct {
	ID        int64  `json:"id"`
	Text      string `json:"text"`
	UserID    int64  `json:"userId"`
	CreatedAt int64  `json:"createdAt"` // milliseconds since the Unix epoch
	User      User   `json:"user"`
	// TraceParent is the W3C traceparent of the request that posted the
	// message ("" when it was not traced), kept so that whoever acts on
	// the message later (the bot, following the store) continues that
	// trace. It is not part of the API's JSON.
	TraceParent string `json:"-"`
}

// NewMessage is what [Store.CreateMessage] needs. The caller has checked
// and cut Text; CreatedAt is in milliseconds since the Unix epoch.
type NewMessage struct {
	Text      string
	UserID    int64
	CreatedAt int64
	// TraceParent: see [Message.TraceParent].
	TraceParent string
}

// SortField orders a [Query] by one field; fields are named as in the
// JSON of the records (id, email for users; id, text, createdAt, userId
// for messages).
type SortField struct {
	Field string
	Desc  bool
}

// Query selects a page of records: sorted by Sort, ties broken by id in
// the direction of the first sort field (so "createdAt descending" is
// newest first even within one millisecond), Skip records skipped, at
// most Limit returned. Limit 0 returns no records, only
// the total. UserID, when not zero, keeps only that user's messages (or,
// for users, that user).
type Query struct {
	Sort   []SortField
	Limit  int
	Skip   int
	UserID int64
}

// Page is one page of a find, in the shape feathers answers a paginated
// find with.
type Page[T any] struct {
	Total int `json:"total"`
	Limit int `json:"limit"`
	Skip  int `json:"skip"`
	Data  []T `json:"data"`
}

// Position is the highest user and message ID a follower has seen.
type Position struct {
	UserID    int64
	MessageID int64
}

// Event is one new record: exactly one of User and Message is set.
type Event struct {
	User    *User
	Message *Message
}

// Store keeps the chat's users and messages. All methods are safe for
// concurrent use.
type Store interface {
	// CreateUser adds a user; an email already taken is [ErrConflict].
	CreateUser(ctx context.Context, u NewUser) (User, error)
	// User returns the user with the ID, or [ErrNotFound].
	User(ctx context.Context, id int64) (User, error)
	// Credentials returns the user with the email and its password hash,
	// or [ErrNotFound]. It is the only method that reveals a hash.
	Credentials(ctx context.Context, email string) (User, string, error)
	// FindUsers returns a page of users.
	FindUsers(ctx context.Context, q Query) (Page[User], error)
	// PatchUser changes a user and returns it, or [ErrNotFound].
	PatchUser(ctx context.Context, id int64, p UserPatch) (User, error)
	// RemoveUser deletes a user and its messages and returns the user.
	RemoveUser(ctx context.Context, id int64) (User, error)

	// CreateMessage adds a message by an existing user ([ErrNotFound]
	// otherwise).
	CreateMessage(ctx context.Context, m NewMessage) (Message, error)
	// Message returns the message with the ID, or [ErrNotFound].
	Message(ctx context.Context, id int64) (Message, error)
	// FindMessages returns a page of messages.
	FindMessages(ctx context.Context, q Query) (Page[Message], error)
	// CountMessages returns how many messages there are.
	CountMessages(ctx context.Context) (int, error)
	// PatchMessage replaces a message's text and returns it.
	PatchMessage(ctx context.Context, id int64, text string) (Message, error)
	// RemoveMessage deletes a message and returns it.
	RemoveMessage(ctx context.Context, id int64) (Message, error)

	// Position returns the highest user and message IDs now stored.
	Position(ctx context.Context) (Position, error)
	// Follow calls fn, in ID order, for every user and message created
	// after pos, until ctx is done (it then returns ctx's error) or fn
	// returns an error (returned as is). Users and messages created in
	// the same instant may come in either order.
	Follow(ctx context.Context, pos Position, fn func(Event) error) error
}

// MaxTextLen is the most characters (runes) a message keeps; longer text
// is cut, as feathers-chat cuts it.
const MaxTextLen = 400

// CutText returns text cut to [MaxTextLen] runes.
func CutText(text string) string {
	if utf8.RuneCountInString(text) <= MaxTextLen {
		return text
	}
	return string([]rune(text)[:MaxTextLen])
}

// CheckText reports, as [ErrInvalid], a message text no store keeps:
// blank, longer than [MaxTextLen] characters, not UTF-8, or holding a NUL
// (which Postgres's text cannot hold). Callers cut text with [CutText]
// first.
func CheckText(text string) error {
	switch {
	case strings.TrimSpace(text) == "":
		return fmt.Errorf("store: a message must have a text: %w", ErrInvalid)
	case !utf8.ValidString(text):
		return fmt.Errorf("store: message text is not UTF-8: %w", ErrInvalid)
	case utf8.RuneCountInString(text) > MaxTextLen:
		return fmt.Errorf("store: message text is longer than %d characters: %w", MaxTextLen, ErrInvalid)
	case strings.ContainsRune(text, 0):
		return fmt.Errorf("store: message text holds a NUL character: %w", ErrInvalid)
	}
	return nil
}

// MaxEmailLen is the longest email a store keeps, and MaxAvatarLen the
// longest avatar URL, in bytes.
const (
	MaxEmailLen  = 254
	MaxAvatarLen = 2048
)

// CheckEmail reports, as [ErrInvalid], an email no store keeps: shorter
// than 3 or longer than [MaxEmailLen] bytes, without an @, not UTF-8, or
// holding a space, a control character (NUL included) or one of <>".
func CheckEmail(email string) error {
	if len(email) < 3 || len(email) > MaxEmailLen || !strings.Contains(email, "@") || !utf8.ValidString(email) ||
		strings.ContainsFunc(email, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`<>"`, r) }) {
		return fmt.Errorf("store: %q is not an email address: %w", email, ErrInvalid)
	}
	return nil
}

// CheckUserQuery reports, as [ErrInvalid], a query a user find cannot
// serve: a sort field other than id and email, more than [MaxSortFields],
// or a limit or skip that is negative or over [math.MaxInt32] (the gRPC
// API's int32).
func CheckUserQuery(q Query) error { return checkQuery(q, "id", "email") }

// CheckMessageQuery reports, as [ErrInvalid], a query a message find cannot
// serve: a sort field other than id, text, createdAt and userId, more
// than [MaxSortFields], or a limit or skip that is negative or over
// [math.MaxInt32].
func CheckMessageQuery(q Query) error {
	return checkQuery(q, "id", "text", "createdAt", "userId")
}

// MaxSortFields is the most fields a [Query] sorts by.
const MaxSortFields = 4

func checkQuery(q Query, fields ...string) error {
	if len(q.Sort) > MaxSortFields {
		return fmt.Errorf("store: %d sort fields, at most %d: %w", len(q.Sort), MaxSortFields, ErrInvalid)
	}
	if q.Limit < 0 || q.Skip < 0 || q.Limit > math.MaxInt32 || q.Skip > math.MaxInt32 {
		return fmt.Errorf("store: limit %d or skip %d out of range 0 to %d: %w", q.Limit, q.Skip, math.MaxInt32, ErrInvalid)
	}
	for _, s := range q.Sort {
		if !slices.Contains(fields, s.Field) {
			return fmt.Errorf("store: cannot sort by %q: %w", s.Field, ErrInvalid)
		}
	}
	return nil
}
