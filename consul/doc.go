// Package consul connects ztn to Consul: [Intentions] keeps a service's
// intentions in sync from Consul and authorizes with them (an
// authz.Authorizer), and [Catalog] finds and registers instances in Consul's
// catalog (a discovery.Resolver, Registrar, Picker and Watcher). Both take
// the same [Config], which says how to reach Consul once for the process.
//
// Packages authz and discovery define what an authorizer and a resolver
// are and hold the in-memory ones; only this package links Consul's client
// (github.com/hashicorp/consul/api), so a program that does not use Consul
// does not carry it.
//
// A service that serves "api" with its intentions from Consul, registered
// in Consul's catalog, and calls other services found there:
//
//	client, err := api.NewClient(api.DefaultConfig()) // CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN...
//	if err != nil {
//		log.Fatal(err)
//	}
//	cfg := consul.Config{Client: client}
//	intentions, err := consul.NewIntentions(cfg, "api")
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer intentions.Close()
//	if err := intentions.WaitSynced(ctx); err != nil {
//		log.Fatal(err) // everything is denied until the first sync
//	}
//	catalog, err := consul.NewCatalog(cfg)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer catalog.Close()
//
//	svc, err := ztnet.New(ctx, "api",
//		ztnet.WithSource(source),         // certificates, e.g. from Vault
//		ztnet.WithAuthorizer(intentions), // who may call api
//		ztnet.WithResolver(catalog))      // where the others are; listeners register here
//
// # Configuration
//
// [Config] holds what both backends share: the client, the options of every
// request (ACL token, datacenter...), and the pacing of the blocking queries
// that keep them fresh (wait time, rate limit, backoff). What only one of
// them has is an option: [WithDefaultAllow] and [WithMaxStaleness] for
// Intentions; [WithIdleTimeout], [WithCheckTTL], [WithDeregisterAfter] and
// [WithBalancer] for a Catalog. [WithLogger] and [WithMeterProvider] serve
// both.
//
// # Failures
//
// Both answer from memory, kept fresh by blocking queries in the background:
// an authorization or a resolution never waits for Consul once synced.
// When Consul cannot be reached, or answers with errors, the last answer it
// gave stays in force while the queries retry with backoff;
// [Intentions.Staleness], [Catalog.Staleness] and the ztn.authz.staleness
// and ztn.discovery.staleness gauges say for how long. [WithMaxStaleness]
// makes Intentions fail closed instead after a while. Errors name the ACL
// permission a request lacked.
package consul
