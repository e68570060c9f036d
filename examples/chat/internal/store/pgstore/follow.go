package pgstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

// followBatch bounds the records read per query while catching up.
const followBatch = 500

// errRotated ends one connection's follow so the next one uses the new
// credentials.
var errRotated = errors.New("pgstore: credentials rotated")

// Follow implements [store.Store.Follow]. It LISTENs on a connection of
// its own and reads what is new on every notification and at least every
// poll interval. On [Store.Rotate] it moves to a new connection without a
// gap; when the database cannot be reached it returns an error wrapping
// [store.ErrUnavailable] (callers resume from their last position).
func (s *Store) Follow(ctx context.Context, pos store.Position, fn func(store.Event) error) error {
	for {
		err := s.followConn(ctx, &pos, fn)
		if !errors.Is(err, errRotated) {
			return err
		}
	}
}

// fnError marks an error of the caller's fn, returned as is.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

func (s *Store) followConn(ctx context.Context, pos *store.Position, fn func(store.Event) error) error {
	gen := s.gen.Load()
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return wrap("follow", err)
	}
	// The connection is ours alone from here (a LISTENing connection must
	// not go back to the pool), and closed when this one is done.
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return wrap("follow", err)
	}
	for {
		if err := s.catchUp(ctx, conn, pos, fn); err != nil {
			var fe fnError
			if errors.As(err, &fe) {
				return fe.err
			}
			return wrap("follow", err)
		}
		if s.gen.Load() != gen {
			return errRotated
		}
		s.mu.Lock()
		rotated := s.rotated
		s.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, s.cfg.pollInterval)
		stop := make(chan struct{})
		go func() {
			select {
			case <-rotated:
				cancel()
			case <-stop:
			}
		}()
		_, err := conn.WaitForNotification(wctx)
		close(stop)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil, wctx.Err() != nil:
			// A notification, the poll interval or a rotation: read on.
		default:
			return wrap("follow", err)
		}
	}
}

// catchUp hands fn every user and then every message after pos, in ID
// order, moving pos along.
func (s *Store) catchUp(ctx context.Context, conn *pgx.Conn, pos *store.Position, fn func(store.Event) error) error {
	for {
		rows, err := conn.Query(ctx, `SELECT id, email, avatar FROM users WHERE id > $1 ORDER BY id LIMIT $2`, pos.UserID, followBatch)
		if err != nil {
			return err
		}
		users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) {
			var u store.User
			err := r.Scan(&u.ID, &u.Email, &u.Avatar)
			return u, err
		})
		if err != nil {
			return err
		}
		for _, u := range users {
			if err := fn(store.Event{User: &u}); err != nil {
				return fnError{err}
			}
			pos.UserID = u.ID
		}
		if len(users) < followBatch {
			break
		}
	}
	for {
		rows, err := conn.Query(ctx, `SELECT `+messageColumns+` FROM messages m JOIN users u ON u.id = m.user_id
			WHERE m.id > $1 ORDER BY m.id LIMIT $2`, pos.MessageID, followBatch)
		if err != nil {
			return err
		}
		msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Message, error) { return scanMessage(r) })
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := fn(store.Event{Message: &m}); err != nil {
				return fnError{err}
			}
			pos.MessageID = m.ID
		}
		if len(msgs) < followBatch {
			return nil
		}
	}
}
