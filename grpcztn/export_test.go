package grpcztn

import (
	"google.golang.org/grpc/credentials"

	"github.com/ztnlabs/ztn"
)

// Hooks for the external tests, to exercise parts NewServer and NewClient
// assemble.
var (
	Credentials            = newCredentials
	UnaryServerInterceptor = unaryServerInterceptor
)

// NewAuthInfo returns the AuthInfo the credentials give a connection from
// peer.
func NewAuthInfo(peer ztn.ServiceID) credentials.AuthInfo { return authInfo{peer: peer} }
