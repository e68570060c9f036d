# Source adaptations for building Vault v1.21.4 as a Go tool, and trims that
# link only what the tests use.
#
# Sourced by scripts/build-tools.sh (never run on its own). Vault's go.mod
# replaces its nested api/sdk modules with local directories, which Go ignores
# when vault is built as a dependency, and no combination of released sdk/api
# versions compiles the release tag unchanged. With sdk v0.21.0 + api v1.22.0
# (see the replaces in go.mod beside this file) three one-line adaptations are
# enough; none of them touches PKI code.
#
# Trims (the full build compiles 2331 packages, 311 MB of Go source; this one
# about a third of that, see `scripts/build-tools.sh --deps vault`):
#   - Vault's own `minimal` build tag: the built-in plugin registry keeps
#     approle, cert, jwt/oidc, userpass auth and kv, pki, ssh, transit secrets
#     (+ database, token, the dev server's inmem/raft storage); every cloud
#     auth/secrets plugin, database plugin and storage backend is left out.
#   - Added back what the tests use beyond that: the kubernetes auth method
#     (certs' Vault auth tests) and the postgresql database plugin (examples
#     with Postgres).
#   - No Okta login MFA (the Okta SDK, 12 MB of Go source alone).
#   - No kubernetes service registration, no `vault hcp` commands, and raft's
#     cloud auto-join (go-discover) knows no provider: a dev server on loopback
#     uses none of them.
# A test that mounts something left out fails with Vault's "unknown ... type"
# error; add it back here (registry_min.go below).
#
# build-tools.sh copies each module in PATCH_MODULES from the module cache into
# the build dir, calls patch_source MODULE DIR on each copy, and builds through
# a generated modfile that replaces the modules by the copies. patch_once (from
# build-tools.sh) fails unless the old text occurs exactly once, so upstream
# drift fails the build loudly.
#
# This file is part of the binary's cache key: editing it rebuilds vault.

PATCH_MODULES=(github.com/hashicorp/vault github.com/hashicorp/go-discover)

# Paths left out of the copy of the vault module (not needed to build it).
SRC_EXCLUDE=(./ui ./changelog ./website ./enos ./vault/external_tests)

BUILD_TAGS=minimal

patch_source() {
	local mod=$1 src=$2
	case $mod in
	github.com/hashicorp/vault) patch_vault "$src" ;;
	github.com/hashicorp/go-discover) patch_go_discover "$src" ;;
	*) die "patches.sh: no patch for $mod" ;;
	esac
}

patch_vault() {
	local src=$1

	# The sdk's ActivationFunc gained a third (string) argument.
	patch_once "$src/vault/identity_store.go" \
		'ActivationFunc: iStore.activateDeduplication,' \
		'ActivationFunc: func(ctx context.Context, req *logical.Request, _ string) error { return iStore.activateDeduplication(ctx, req) },'
	patch_once "$src/vault/logical_system_activation_flags.go" \
		'b.idStoreBackend.ActivationFunc(ctx, nil)' \
		'b.idStoreBackend.ActivationFunc(ctx, nil, "")'

	# keysutil's RestorePolicy in sdk v0.21.0 returns only an error.
	patch_once "$src/builtin/logical/transit/path_restore.go" \
		'restoredKeyName, err := b.lm.RestorePolicy(ctx, req.Storage, keyName, backupB64, force)' \
		$'restoredKeyName := keyName\n\terr := b.lm.RestorePolicy(ctx, req.Storage, keyName, backupB64, force)'

	# minimal + what the tests use.
	patch_once "$src/helper/builtinplugins/registry_min.go" \
		$'package builtinplugins\n\nfunc extendAddonPlugins(_ *registry) {\n\t// No-op\n}' \
		$'package builtinplugins\n\nimport (\n\tcredKube "github.com/hashicorp/vault-plugin-auth-kubernetes"\n\tdbPostgres "github.com/hashicorp/vault/plugins/database/postgresql"\n)\n\n// ztn: the tests use these beyond the minimal set.\nfunc extendAddonPlugins(r *registry) {\n\tr.credentialBackends["kubernetes"] = credentialBackend{Factory: credKube.Factory}\n\tr.databasePlugins["postgresql-database-plugin"] = databasePlugin{Factory: dbPostgres.New}\n}'

	# No kubernetes service registration (client-go).
	patch_once "$src/command/commands.go" \
		$'\tksr "github.com/hashicorp/vault/serviceregistration/kubernetes"\n' ''
	patch_once "$src/command/commands.go" \
		$'\t\t\t"kubernetes": ksr.NewServiceRegistration,\n' ''
	# No `vault hcp` commands (the HCP SDK).
	patch_once "$src/command/commands.go" \
		$'\thcpvlib "github.com/hashicorp/vault-hcp-lib"\n' ''
	patch_once "$src/command/commands.go" \
		'for cmd, cmdFactory := range hcpvlib.InitHCPCommand(ui) {' \
		'for cmd, cmdFactory := range map[string]cli.CommandFactory{} {'
	# No Okta login MFA (the Okta SDK): configuring it still works, using it
	# fails with an error.
	patch_once "$src/vault/login_mfa.go" \
		$'\t"github.com/okta/okta-sdk-golang/v5/okta"\n' ''
	patch_once "$src/vault/login_mfa.go" $'\t"regexp"\n' '' # only validateOkta used it
	replace_func "$src/vault/login_mfa.go" \
		'func (c *Core) validateOkta(ctx context.Context, mConfig *mfa.Config, username string) error {' \
		$'\n\treturn fmt.Errorf("okta MFA is not linked into this test build of vault (internal/tools/vault/patches.sh)")\n}'
	# raft auto-join: no k8s provider (and go-discover below has no others).
	patch_once "$src/vault/raft.go" \
		$'\tdiscoverk8s "github.com/hashicorp/go-discover/provider/k8s"\n' ''
	patch_once "$src/vault/raft.go" \
		$'\tproviders["k8s"] = &discoverk8s.Provider{}\n' ''
}

# patch_go_discover DIR: discover.Providers without its 14 cloud providers
# (each pulls in a cloud SDK). Same patch as in ../patches.sh (Consul).
patch_go_discover() {
	local src=$1
	delete_lines "$src/discover.go" '^\s+"github.com/hashicorp/go-discover/provider/[a-z]+"$' 14
	delete_lines "$src/discover.go" '^\s+"[a-z]+": +&[a-z]+\.Provider\{\},$' 14
}
