# Trims for building SPIRE v1.13.3 (spire-server and spire-agent): link only
# the plugins the tests configure (internal/testenv/spire.go):
#   server: DataStore "sql" (sqlite3), NodeAttestor "join_token",
#           KeyManager "memory"; no UpstreamAuthority, Notifier,
#           BundlePublisher;
#   agent:  NodeAttestor "join_token", KeyManager "memory",
#           WorkloadAttestor "unix"; no SVIDStore.
# Every cloud/k8s/docker/TPM plugin (and its SDK) is left out of the built-in
# catalogs. A test configuring a plugin left out fails at startup with SPIRE's
# "no built-in plugin" error; add it back by removing its line below.
#
# Sourced by scripts/build-tools.sh (never run on its own); see
# ../vault/patches.sh for how PATCH_MODULES, patch_source and delete_lines
# work. This file is part of the SPIRE binaries' cache key.

PATCH_MODULES=(github.com/spiffe/spire)

# Paths left out of the copy (not needed to build the binaries).
SRC_EXCLUDE=(./doc ./conformance ./support)

# drop_builtins FILE KIND NAME...: remove plugin NAME (package
# github.com/spiffe/spire/pkg/<side>/plugin/KIND/NAME) from the catalog in FILE:
# its import and its NAME.BuiltIn() line, each of which must occur once. An
# import under another name is given as ALIAS:NAME.
drop_builtins() {
	local file=$1 kind=$2 name alias
	shift 2
	for name in "$@"; do
		alias=${name%%:*}
		name=${name#*:}
		delete_lines "$file" '^\s+('"$alias"' )?"github\.com/spiffe/spire/pkg/(server|agent)/plugin/'"$kind/$name"'"$' 1
		delete_lines "$file" '^\s+'"$alias"'\.BuiltIn\(\),$' 1
	done
}

patch_source() {
	local src=$2 s=$2/pkg/server/catalog a=$2/pkg/agent/catalog
	drop_builtins "$s/bundlepublisher.go" bundlepublisher awsrolesanywhere awss3 gcpcloudstorage k8sconfigmap
	drop_builtins "$s/keymanager.go" keymanager awskms azurekeyvault disk gcpkms
	drop_builtins "$s/nodeattestor.go" nodeattestor awsiid azuremsi gcpiit httpchallenge k8spsat sshpop tpmdevid x509pop
	drop_builtins "$s/notifier.go" notifier gcsbundle k8sbundle
	drop_builtins "$s/upstreamauthority.go" upstreamauthority awspca awssecret certmanager disk ejbca gcpcas spireplugin:spire vault
	drop_builtins "$a/keymanager.go" keymanager disk
	drop_builtins "$a/nodeattestor.go" nodeattestor awsiid azuremsi gcpiit httpchallenge k8spsat sshpop tpmdevid x509pop
	drop_builtins "$a/svidstore.go" svidstore awssecretsmanager gcpsecretmanager
	drop_builtins "$a/workloadattestor.go" workloadattestor docker k8s systemd windows
}
