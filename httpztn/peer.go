package httpztn

import (
	"net/http"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// PeerID returns the SPIFFE ID of the service that sent r, and whether r
// came over a ztn connection (served by NewServer, or by a server with the
// ConnContext hook).
func PeerID(r *http.Request) (spiffeid.ID, bool) {
	zc := connOf(r)
	if zc == nil {
		return spiffeid.ID{}, false
	}
	return zc.PeerID(), true
}
