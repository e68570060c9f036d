// Package ztn gives Go services zero-trust connections inside their own
// process, with no sidecar: mutual TLS 1.3 with short-lived certificates that
// rotate by themselves, peers named by SPIFFE IDs, every connection (and,
// through the gRPC and HTTP adapters, every request) authorized against
// Consul intentions, and services found through a catalog.
//
// This package holds what every layer shares: [ServiceID], a service's
// identity, parsed from and formatted to its SPIFFE ID.
//
// # Packages
//
// From the bottom up:
//
//   - ztn (this package): [ServiceID].
//   - certs: where identities come from (an in-memory dev CA, files, a
//     static source) and the rotation engine that renews them; the backends
//     certs/vault, certs/consulca and certs/workloadapi, each linked only
//     when imported.
//   - authz: Consul's intention model, evaluated locally in memory.
//   - discovery: finding healthy instances, balancing, change notification.
//   - consul: intentions and catalog from Consul, with one shared Config.
//   - ztnet: Service, Listen, Dial and Peer — the connections themselves;
//     ztnet/ztntest: an in-process mesh for tests.
//   - grpcztn, httpztn: gRPC and net/http on top of ztnet.
//
// # Example
//
// A complete program, on the embedded dev mesh:
//
//	mesh, _ := ztnet.NewDev()
//	entries, _ := authz.ParseConfigEntries([]byte(`{"Kind": "service-intentions",
//		"Name": "fortune", "Sources": [{"Name": "web", "Action": "allow"}]}`))
//	_ = mesh.Policy().Set(entries...)
//
//	fortune, _ := mesh.Service(ctx, "fortune")
//	l, _ := fortune.Listen(ctx, "tcp", "127.0.0.1:0")
//	go func() {
//		for {
//			c, err := l.Accept() // only authorized peers get here
//			if err != nil {
//				return
//			}
//			peer, _ := ztnet.Peer(c)
//			fmt.Fprintf(c, "hello %s\n", peer)
//			c.Close()
//		}
//	}()
//
//	web, _ := mesh.Service(ctx, "web")
//	c, err := web.Dial(ctx, "fortune") // a refusal fails here, with the reason
//	if err != nil {
//		log.Fatal(err)
//	}
//	io.Copy(os.Stdout, c)
package ztn
