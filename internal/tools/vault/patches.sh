# Source adaptations for building Vault v1.21.4 as a Go tool.
#
# Sourced by scripts/build-tools.sh (never run on its own). Vault's go.mod
# replaces its nested api/sdk modules with local directories, which Go ignores
# when vault is built as a dependency, and no combination of released sdk/api
# versions compiles the release tag unchanged. With sdk v0.21.0 + api v1.22.0
# (see the replaces in go.mod beside this file) three one-line adaptations are
# enough; none of them touches PKI code.
#
# build-tools.sh copies the module from the module cache into ./vault-src
# (git-ignored), calls patch_source on the copy, and builds from it through a
# generated modfile that replaces github.com/hashicorp/vault with the copy.
#
# This file is part of the binary's cache key: editing it rebuilds vault.

# Paths left out of the source copy (not needed to build the binary).
SRC_EXCLUDE=(./ui ./changelog)

# patch_source DIR: adapt the copy in DIR. patch_once (from build-tools.sh)
# fails unless the old text occurs exactly once.
patch_source() {
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
}
