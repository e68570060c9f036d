package storegrpc

import (
	"strings"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/storegrpc/storepb"
)

// What the server takes, whoever calls it: its callers (chat-web,
// chat-bot) check their input, but the store does not rely on them. A
// request out of these bounds is InvalidArgument saying which field; a
// message over gRPC's 4 MB limit is ResourceExhausted before it gets here.
const (
	maxPage           = 1000 // records in one find; a larger limit is served as this
	maxHashLen        = 128  // bytes of a password hash (bcrypt's are 60)
	maxTraceParentLen = 55   // a W3C traceparent: 00-<32 hex>-<16 hex>-<2 hex>
)

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, "chat store: "+format, args...)
}

// checkID refuses an ID that no record has: IDs start at 1.
func checkID(field string, id int64) error {
	if id <= 0 {
		return invalid("%s %d: IDs are positive", field, id)
	}
	return nil
}

// checkStatus turns a store check's error into InvalidArgument.
func checkStatus(err error) error {
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return nil
}

// checkUserFields checks the fields of a user create or patch that are
// set (nil: left as it is).
func checkUserFields(email, hash, avatar *string) error {
	if email != nil {
		if err := store.CheckEmail(*email); err != nil {
			return checkStatus(err)
		}
	}
	if hash != nil && (len(*hash) > maxHashLen || strings.ContainsFunc(*hash, unicode.IsControl)) {
		return invalid("password hash: at most %d bytes, no control characters", maxHashLen)
	}
	if avatar != nil && (len(*avatar) > store.MaxAvatarLen || strings.ContainsFunc(*avatar, unicode.IsControl)) {
		return invalid("avatar: at most %d bytes, no control characters", store.MaxAvatarLen)
	}
	return nil
}

func checkCreateMessage(r *storepb.CreateMessageRequest) error {
	if err := checkID("user_id", r.GetUserId()); err != nil {
		return err
	}
	if r.GetCreatedAt() < 0 {
		return invalid("created_at %d: milliseconds since the epoch, not negative", r.GetCreatedAt())
	}
	if tp := r.GetTraceParent(); len(tp) > maxTraceParentLen || strings.ContainsFunc(tp, unicode.IsControl) {
		return invalid("trace_parent: a W3C traceparent, at most %d bytes", maxTraceParentLen)
	}
	return checkStatus(store.CheckText(r.GetText()))
}

// pageQuery is queryFromPB with the limit bounded by maxPage; negative
// limits and skips, unknown sort fields and too many of them are left to
// the store, which refuses them (ErrInvalid: InvalidArgument).
func pageQuery(pq *storepb.Query) (store.Query, error) {
	q := queryFromPB(pq)
	if q.UserID < 0 {
		return q, invalid("user_id %d: IDs are positive", q.UserID)
	}
	q.Limit = min(q.Limit, maxPage)
	return q, nil
}
