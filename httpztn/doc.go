// Package httpztn will carry net/http over ztnet: a server over a ztn
// listener, authorization middleware for L7 intentions, a client transport
// whose URL host is the service name, and an ingress gateway. It is not
// implemented yet.
package httpztn
