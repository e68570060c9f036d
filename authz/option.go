package authz

// Option configures [NewPolicy].
type Option func(*policyConfig)

type policyConfig struct {
	defaultAllow bool
}

// WithDefaultAllow makes a [Policy] allow what no intention decides, as
// Consul does with ACLs disabled or acl.default_policy = "allow". The
// default is deny.
func WithDefaultAllow() Option {
	return func(c *policyConfig) { c.defaultAllow = true }
}
