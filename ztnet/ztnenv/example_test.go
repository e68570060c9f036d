package ztnenv_test

import (
	"fmt"

	"github.com/ztnlabs/ztn/ztnet/ztnenv"
)

// Without ZTN_DEV=1 the mesh is Consul and Vault; what is missing is named,
// all at once, before anything is contacted.
func ExampleNew() {
	vars := map[string]string{
		"CONSUL_HTTP_ADDR": "127.0.0.1:8500",
		"VAULT_ADDR":       "http://127.0.0.1:8200",
		"VAULT_TOKEN":      "hvs.example",
		"ZTN_PKI_ROLE":     "{service}",
		"ZTN_DATACENTER":   "dc1",
	}
	_, err := ztnenv.New(func(k string) string { return vars[k] })
	fmt.Println(err)
	// Output:
	// ztnenv: environment: set ZTN_PKI_MOUNT (the Vault PKI mount that signs service certificates, e.g. pki), ZTN_TRUST_DOMAIN (the SPIFFE trust domain of the PKI, e.g. example.org); or set ZTN_DEV=1 for the embedded dev mesh
}
