// Package ztn gives Go services zero-trust connections inside their own
// process, with no sidecar: mutual TLS 1.3 with short-lived certificates that
// rotate by themselves, peers named by SPIFFE IDs, every connection (and,
// through the gRPC and HTTP adapters, every request) authorized against
// Consul intentions, and services found through a catalog.
//
// The packages, from the bottom up:
//
//   - certs: where identities come from (an in-memory dev CA; Vault PKI,
//     Consul CA, files and the SPIFFE Workload API as they land) and the
//     rotation engine that renews them.
//   - authz: Consul's intention model, evaluated locally in memory.
//   - discovery: finding healthy instances, registering our own.
//   - ztnet: Service, Listen and Dial — the connections themselves.
//   - grpcztn, httpztn: gRPC and net/http on top of ztnet.
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
