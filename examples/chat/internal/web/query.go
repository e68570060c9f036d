package web

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

// Paging limits, as feathers-chat's "paginate": {"default": 10, "max": 50}.
const (
	defaultLimit = 10
	maxLimit     = 50
)

// parseQuery reads feathers' query syntax: $limit, $skip, $sort[field]=1|-1
// (in the order given) and, when filter is not empty, an equality filter
// on that one field (userId for messages, id for users). Anything else is
// a 400, as feathers-chat's schemas reject unknown query properties.
func parseQuery(u *url.URL, filter string) (store.Query, error) {
	q := store.Query{Limit: defaultLimit}
	for part := range strings.SplitSeq(u.RawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return q, errorf(http.StatusBadRequest, "malformed query %q", part)
		}
		switch {
		case key == "$limit":
			// Any number of digits is a limit: above 50, however far, it
			// is served as 50.
			n, err := strconv.ParseUint(val, 10, 32)
			if errors.Is(err, strconv.ErrRange) {
				n, err = maxLimit, nil
			}
			if err != nil {
				return q, errorf(http.StatusBadRequest, "$limit must be a number >= 0, not %q", val)
			}
			q.Limit = int(min(n, maxLimit))
		case key == "$skip":
			n, err := strconv.ParseUint(val, 10, 31)
			if err != nil {
				return q, errorf(http.StatusBadRequest, "$skip must be a number from 0 to %d, not %q", math.MaxInt32, val)
			}
			q.Skip = int(n)
		case strings.HasPrefix(key, "$sort[") && strings.HasSuffix(key, "]"):
			field := key[len("$sort[") : len(key)-1]
			switch val {
			case "1":
				q.Sort = append(q.Sort, store.SortField{Field: field})
			case "-1":
				q.Sort = append(q.Sort, store.SortField{Field: field, Desc: true})
			default:
				return q, errorf(http.StatusBadRequest, "%s must be 1 or -1, not %q", key, val)
			}
		case filter != "" && key == filter:
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n <= 0 {
				return q, errorf(http.StatusBadRequest, "%s must be an id, not %q", key, val)
			}
			q.UserID = n
		default:
			return q, errorf(http.StatusBadRequest, "unknown query parameter %q", key)
		}
	}
	return q, nil
}
