// Package consul keeps ztn in step with Consul: [Intentions] is an
// authz.Authorizer whose intentions come from Consul, and [Catalog] a
// discovery Resolver and Registrar backed by Consul's catalog.
package consul
