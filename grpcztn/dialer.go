package grpcztn

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// maxRefusals bounds how many addresses' refusals a client remembers.
const maxRefusals = 64

// dialer makes the connections of one ClientConn with ztnet, and remembers
// for each address the refusal (*ztnet.DeniedError, *ztnet.RejectedError)
// its last dial ended with. grpc-go keeps only the text of a dial error in
// the status of the RPCs that fail because of it; the client interceptors
// find the refusal again by that text (refusal) and give it back to the
// caller, reachable with errors.As.
type dialer struct {
	svc     *ztnet.Service
	service string

	mu      sync.Mutex
	refused map[string]error // address → the refusal of its last dial
}

func newDialer(svc *ztnet.Service, service string) *dialer {
	return &dialer{svc: svc, service: service, refused: make(map[string]error)}
}

// dial connects to the instance of the service at addr. grpc-go backs off
// before dialing again an address whose dial failed (a second, growing
// 1.6 times per failure up to two minutes, grpc.WithConnectParams), so a
// denied client does not hammer the server.
func (d *dialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := ztnhook.Of(d.svc).DialAddress(ctx, d.service, addr, "h2")
	if err == nil {
		d.mu.Lock()
		delete(d.refused, addr)
		d.mu.Unlock()
		return c, nil
	}
	d.mu.Lock()
	if isRefusal(err) {
		if _, ok := d.refused[addr]; !ok && len(d.refused) >= maxRefusals {
			for a := range d.refused { // forget one, any
				delete(d.refused, a)
				break
			}
		}
		d.refused[addr] = err
	} else {
		delete(d.refused, addr)
	}
	d.mu.Unlock()
	return nil, err
}

// refusal returns the remembered refusal whose text msg (an RPC status's
// message) carries, or nil. grpc-go quotes the dial error in the message
// (its ConnectionError formats it with %q), so both forms are looked for.
func (d *dialer) refusal(msg string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, err := range d.refused {
		text := err.Error()
		if q := strconv.Quote(text); strings.Contains(msg, text) || strings.Contains(msg, q[1:len(q)-1]) {
			return err
		}
	}
	return nil
}

func isRefusal(err error) bool {
	var denied *ztnet.DeniedError
	var rejected *ztnet.RejectedError
	return errors.As(err, &denied) || errors.As(err, &rejected)
}
