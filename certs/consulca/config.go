package consulca

import (
	"time"

	"github.com/hashicorp/consul/api"
)

// Defaults of Config.
const (
	DefaultRequestTimeout = 10 * time.Second
	DefaultBlockingWait   = 5 * time.Minute
)

// maxBlockingWait is the longest wait Consul honours (10m).
const maxBlockingWait = 10 * time.Minute

// Config configures New. Client and Service are required.
type Config struct {
	// Client talks to the local Consul agent. Its token needs service:write
	// on Service (the leaf endpoint's ACL). Blocking queries wait up to
	// BlockingWait: its HTTP client must not time out sooner (the default
	// api.Config's does not time out).
	Client *api.Client
	// Service is the service's name; its SPIFFE ID is
	// spiffe://<trust domain>/ns/default/dc/<Datacenter>/svc/<Service>.
	Service string
	// Datacenter is the agent's datacenter. Default: read from
	// /v1/agent/self (which needs agent:read); set it when the token may not
	// read the agent.
	Datacenter string
	// RequestTimeout bounds each non-blocking request (default 10s).
	RequestTimeout time.Duration
	// BlockingWait is the wait of each blocking query (default 5m, at most
	// Consul's 10m).
	BlockingWait time.Duration
}
