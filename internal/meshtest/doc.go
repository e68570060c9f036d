// Package meshtest is the test fixture the adapters' tests (grpcztn,
// httpztn) share: a dev mesh in the trust domain "ztn.test" with quiet
// loggers, services closed when the test ends, intentions from Consul's
// config-entry JSON, and a real Consul + Vault mesh
// (Vault-signed identities, Consul intentions and discovery).
//
// Every function takes the test's testing.TB and fails it on error; call them
// from the test's goroutine.
//
//	m := meshtest.Dev(t)
//	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"}]}]`)
//	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
package meshtest
