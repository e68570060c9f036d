// Command vault-bootstrap sets up a Vault PKI mount for ztn services: a
// root and an intermediate CA in the mount (keys kept in Vault), and for
// each service a role that can sign only that service's SPIFFE ID and a
// policy that allows using that role. It is idempotent: an existing CA is
// kept and roles and policies are rewritten. With -rotate it rotates the CA
// instead (new root, new intermediate made default after -propagation).
//
//	VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=... \
//	  go run ./examples/vault-bootstrap -trust-domain example.org web api
//
// The token needs the rights to mount secrets engines and write policies.
// Then give each service a token (or an AppRole, JWT, Kubernetes role) with
// its policy, ztn-<service>, and start it with vault.New (package github.com/ztnlabs/ztn/certs/vault).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/certs/vault"
)

func main() {
	var (
		td          = flag.String("trust-domain", "", "SPIFFE trust domain (required)")
		dc          = flag.String("datacenter", "dc1", "datacenter in the services' SPIFFE IDs")
		mount       = flag.String("mount", vault.DefaultMount, "PKI mount path")
		leafTTL     = flag.Duration("leaf-ttl", time.Hour, "default lifetime of service certificates (role ttl)")
		leafMaxTTL  = flag.Duration("leaf-max-ttl", 24*time.Hour, "longest lifetime a service may ask for (role max_ttl)")
		rootTTL     = flag.Duration("root-ttl", 10*365*24*time.Hour, "lifetime of a new root")
		intTTL      = flag.Duration("intermediate-ttl", 365*24*time.Hour, "lifetime of a new intermediate")
		prefix      = flag.String("policy-prefix", "ztn-", "prefix of the per-service policy names")
		noPolicies  = flag.Bool("no-policies", false, "do not write policies")
		commonNames = flag.Bool("common-names", false, "roles also sign the service's name as the certificate's common name (for Postgres's cert authentication)")
		rotate      = flag.Bool("rotate", false, "rotate the CA of an existing mount instead")
		propagation = flag.Duration("propagation", 2*time.Minute, "with -rotate: wait this long between publishing the new root and signing with it (at least the services' bundle refresh)")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: vault-bootstrap -trust-domain TD [flags] SERVICE...\n"+
			"Vault's address and token come from VAULT_ADDR and VAULT_TOKEN.\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*td, *dc, *mount, *prefix, *noPolicies, *commonNames, *rotate, *leafTTL, *leafMaxTTL, *rootTTL, *intTTL, *propagation, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "vault-bootstrap:", err)
		os.Exit(1)
	}
}

func run(tdName, dc, mount, prefix string, noPolicies, commonNames, rotate bool, leafTTL, leafMaxTTL, rootTTL, intTTL, propagation time.Duration, services []string) error {
	if tdName == "" {
		flag.Usage()
		return fmt.Errorf("-trust-domain is required")
	}
	td, err := spiffeid.TrustDomainFromString(tdName)
	if err != nil {
		return fmt.Errorf("trust domain %q: %w", tdName, err)
	}
	client, err := api.NewClient(api.DefaultConfig()) // VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT, ...
	if err != nil {
		return err
	}
	if client.Token() == "" {
		return fmt.Errorf("VAULT_TOKEN is not set")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	if rotate {
		fmt.Printf("rotating the CA of %s/ at %s; the new root is published now, signing moves to it in %v\n", mount, client.Address(), propagation)
		r, err := vault.RotateCA(ctx, client, vault.RotateCAConfig{
			Mount: mount, TrustDomain: td, RootTTL: rootTTL, IntermediateTTL: intTTL, Propagation: propagation,
			Progress: func(r vault.RotatedCA) {
				if r.Switched.IsZero() {
					fmt.Printf("%s published: root issuer %s, intermediate %s\n", r.Published.Format(time.TimeOnly), r.RootIssuer, r.IntermediateIssuer)
				} else {
					fmt.Printf("%s switched: %s signs from now on\n", r.Switched.Format(time.TimeOnly), r.IntermediateIssuer)
				}
			},
		})
		if err != nil {
			return err
		}
		fmt.Printf("delete the previous issuers after %s, when no leaf they signed can be valid (vault.RotatedCA.Retire checks it):\n", r.RetireAt.Format(time.RFC3339))
		for _, id := range r.Previous {
			fmt.Printf("  vault delete %s/issuer/%s\n", mount, id)
		}
		return nil
	}

	pki, err := vault.Bootstrap(ctx, client, vault.BootstrapConfig{
		Mount: mount, TrustDomain: td, Datacenter: dc, Services: services,
		RootTTL: rootTTL, IntermediateTTL: intTTL, LeafTTL: leafTTL, LeafMaxTTL: leafMaxTTL,
		PolicyPrefix: prefix, NoPolicies: noPolicies, CommonNames: commonNames,
	})
	if err != nil {
		return err
	}
	if pki.Created {
		fmt.Printf("%s/ at %s: new CA, root issuer %s, default intermediate %s\n", pki.Mount, client.Address(), pki.RootIssuer, pki.IntermediateIssuer)
	} else {
		fmt.Printf("%s/ at %s: kept the existing CA (default issuer %s)\n", pki.Mount, client.Address(), pki.IntermediateIssuer)
	}
	names := make([]string, 0, len(pki.Roles))
	for s := range pki.Roles {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		line := fmt.Sprintf("  %-20s role %s/roles/%s -> spiffe://%s/ns/default/dc/%s/svc/%s", s, pki.Mount, pki.Roles[s], td.Name(), dc, s)
		if p := pki.Policies[s]; p != "" {
			line += ", policy " + p
		}
		fmt.Println(line)
	}
	if len(names) == 0 {
		fmt.Println("  no services given: no roles written")
	}
	return nil
}
