// Package consulnative benchmarks ztn against Consul's Connect-native Go
// package (github.com/hashicorp/consul/connect, deprecated) and raw
// crypto/tls, against a real Consul agent. It is a module of its own so that
// ztn does not depend on Consul's main module. It has no code besides the
// benchmarks; run them with scripts/bench-consul.sh.
package consulnative
