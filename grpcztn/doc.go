// Package grpcztn will carry gRPC over ztnet: transport credentials, a
// ztn:/// resolver fed by discovery, and per-RPC authorization against L7
// intentions. It is not implemented yet.
package grpcztn
