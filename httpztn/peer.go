package httpztn

import (
	"net/http"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/ztnet"
)

// Peer returns the identity of the service that sent r, and whether r came
// over a ztn connection (to a server made by [NewServer]).
func Peer(r *http.Request) (ztn.ServiceID, bool) {
	zc := connOf(r)
	if zc == nil {
		return ztn.ServiceID{}, false
	}
	return ztnet.Peer(zc)
}

// peerOf returns the identity of a ztn connection's peer.
func peerOf(c *ztnet.Conn) ztn.ServiceID {
	p, _ := ztnet.Peer(c)
	return p
}
