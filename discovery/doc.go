// Package discovery finds the healthy instances of a service and registers
// the instances a process serves.
//
// A Resolver answers "where is service X?"; a Registrar announces "I serve X
// here". Static does both in memory, for tests and ztnet's embedded dev mode:
//
//	r := discovery.NewStatic(map[string][]discovery.Instance{
//		"fortune": {{ID: "fortune-1", Address: "127.0.0.1:8181"}},
//	})
//	instances, err := r.Resolve(ctx, "fortune")
package discovery
