package grpcztn

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc/credentials"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/ztnet"
)

// authType is what authInfo.AuthType and the credentials' SecurityProtocol
// return.
const authType = "ztn"

// authInfo is the peer information grpcztn's transport credentials attach to
// every connection, and so to every RPC's peer.Peer (Peer reads it). Its
// security level is PrivacyAndIntegrity: the connection is mutual TLS 1.3
// checked by ztnet.
type authInfo struct {
	credentials.CommonAuthInfo
	peer ztn.ServiceID // the peer's identity
}

// AuthType returns "ztn".
func (authInfo) AuthType() string { return authType }

// transportCreds adapts ztnet to gRPC. The TLS handshake, identity checks and
// connection-level authorization have already happened in ztnet (in Accept
// on the server, in the dial on the client), so the handshakes here only
// check that the connection really is a *ztnet.Conn and describe its peer.
// Anything else is refused: a grpc.Server given these credentials and a
// plain net.Listener serves nobody, instead of serving unauthenticated
// clients; a client given them without grpcztn's dialer fails to connect.
type transportCreds struct{}

// newCredentials returns gRPC transport credentials for connections made by
// ztnet: ServerOptions gives them to a grpc.Server serving a ztnet listener,
// NewClient to a client whose dialer returns *ztnet.Conn. Unlike insecure
// credentials, they report PrivacyAndIntegrity, so per-RPC credentials that
// require transport security keep working, and they fail closed on any
// connection that ztnet did not authenticate.
func newCredentials() credentials.TransportCredentials { return transportCreds{} }

var errNotZTN = errors.New("grpcztn: not a ztn connection (serve a ztnet listener, dial with grpcztn.NewClient)")

func authInfoOf(c net.Conn) (*ztnet.Conn, authInfo, error) {
	zc, ok := c.(*ztnet.Conn)
	if !ok {
		return nil, authInfo{}, fmt.Errorf("%w: got %T", errNotZTN, c)
	}
	return zc, authInfo{
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
		peer:           peerOf(zc),
	}, nil
}

// ClientHandshake checks that the dialed connection is a ztn connection to
// the service named by authority; when it is to another service, the error
// holds a *ztnet.RejectedError.
func (transportCreds) ClientHandshake(_ context.Context, authority string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	zc, ai, err := authInfoOf(c)
	if err != nil {
		return nil, nil, err
	}
	if host, _, err := net.SplitHostPort(authority); err == nil {
		authority = host
	}
	if authority != "" && peerOf(zc).Name != authority {
		return nil, nil, fmt.Errorf("grpcztn: %w", &ztnet.RejectedError{Reason: fmt.Sprintf("server presented %s, not service %q", peerOf(zc), authority)})
	}
	return c, ai, nil
}

// ServerHandshake checks that the accepted connection is a ztn connection.
func (transportCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	_, ai, err := authInfoOf(c)
	if err != nil {
		return nil, nil, err
	}
	return c, ai, nil
}

// Info describes the credentials.
func (transportCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: authType}
}

// Clone returns the credentials (they have no state).
func (transportCreds) Clone() credentials.TransportCredentials { return transportCreds{} }

// OverrideServerName is deprecated in gRPC and does nothing here.
func (transportCreds) OverrideServerName(string) error { return nil }
