// Package meshtest is the test fixture the adapters' tests (grpcztn,
// httpztn) share: a dev mesh in the trust domain "ztn.test" with quiet
// loggers, services closed when the test ends, intentions from Consul's
// config-entry JSON, and a real Consul + Vault mesh
// (Vault-signed identities, Consul intentions and discovery).
//
// Every function takes the test's testing.TB and fails it on error; call them
// from the test's goroutine.
//
// Test support only: unlike the rest of internal/, it imports the library's
// packages (ztnet, certs, authz, discovery), so only tests may import it —
// never library code, and not the in-package tests of the packages it
// imports (that would be a cycle).
//
//	m := meshtest.Dev(t)
//	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"}]}]`)
//	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
package meshtest
