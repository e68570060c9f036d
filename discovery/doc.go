// Package discovery finds the healthy instances of a service and registers
// the instances a process serves.
//
// A [Resolver] answers "where is service X?"; a [Registrar] announces "I
// serve X here". [Static] does both in memory, for tests and ztnet's dev
// mesh:
//
//	catalog := discovery.NewStatic(map[string][]discovery.Instance{
//		"fortune": {{ID: "fortune-1", Address: "127.0.0.1:8181"}},
//	})
//	deregister, err := catalog.Register(ctx, discovery.Registration{
//		Service: "fortune", Address: "127.0.0.1:8182",
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer deregister(ctx)
//	instances, err := catalog.Resolve(ctx, "fortune") // both instances
//
// Give a resolver to a ztnet Service with ztnet.WithResolver; if it is also
// a Registrar, the Service's listeners register themselves in it.
// Consul's catalog is package github.com/ztnlabs/ztn/consul's Catalog, which
// implements every interface of this package.
//
// # Optional interfaces
//
// A Resolver may do more, and its users look for it:
//
//   - a [Picker] chooses the order in which a dial tries the instances and
//     hears how each attempt went; [Balancer] is one, round robin with
//     ejection of failing instances, and Consul's catalog uses it;
//   - a [Watcher] tells when the instances of a service may have changed,
//     so that a client that keeps them (grpcztn's resolver) learns of a new
//     instance at once instead of at its next poll. [Static] and Consul's
//     catalog are Watchers.
package discovery
