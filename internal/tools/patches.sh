# Trims for building Consul v1.20.6 (the tool module in this directory): link
# only what `consul agent -dev` on loopback needs of cloud auto-join.
#
# Sourced by scripts/build-tools.sh (never run on its own); see
# vault/patches.sh for how PATCH_MODULES, patch_source and patch_once work.
# This file is part of consul's cache key: editing it rebuilds consul.
#
# - go-discover (cloud auto-join for -retry-join "provider=aws ..."): no
#   provider. The tests join by address, which does not go through it.
# - Consul's own k8s and HCP auto-join providers left out likewise.
# - No kubernetes ACL auth method (k8s client-go); the tests log in with none.
# See `scripts/build-tools.sh --deps consul` for what remains.

PATCH_MODULES=(github.com/hashicorp/consul github.com/hashicorp/go-discover)

# Paths left out of the copy of the consul module (not needed to build it).
SRC_EXCLUDE=(./ui ./website ./test ./test-integ ./docs)

patch_source() {
	local mod=$1 src=$2
	case $mod in
	github.com/hashicorp/consul) patch_consul "$src" ;;
	github.com/hashicorp/go-discover) patch_go_discover "$src" ;;
	*) die "patches.sh: no patch for $mod" ;;
	esac
}

patch_consul() {
	local src=$1
	patch_once "$src/agent/retry_join.go" \
		$'\tdiscoverk8s "github.com/hashicorp/go-discover/provider/k8s"\n' ''
	patch_once "$src/agent/retry_join.go" \
		$'\tproviders["k8s"] = &discoverk8s.Provider{}\n' ''
	patch_once "$src/agent/retry_join.go" \
		$'\tdiscoverhcp "github.com/hashicorp/consul/agent/hcp/discover"\n' ''
	patch_once "$src/agent/retry_join.go" \
		$'\tproviders["hcp"] = &discoverhcp.Provider{}\n' ''
	patch_once "$src/agent/auto-config/server_addr.go" \
		$'\tdiscoverk8s "github.com/hashicorp/go-discover/provider/k8s"\n' ''
	patch_once "$src/agent/auto-config/server_addr.go" \
		$'\tproviders["k8s"] = &discoverk8s.Provider{}\n' ''
	# No kubernetes ACL auth method (client-go); the tests use none.
	patch_once "$src/agent/consul/acl_authmethod.go" \
		$'\t_ "github.com/hashicorp/consul/agent/consul/authmethod/kubeauth"\n' ''
}

# patch_go_discover DIR: discover.Providers without its 14 cloud providers
# (each pulls in a cloud SDK). Same patch as in vault/patches.sh.
patch_go_discover() {
	local src=$1
	delete_lines "$src/discover.go" '^\s+"github.com/hashicorp/go-discover/provider/[a-z]+"$' 14
	delete_lines "$src/discover.go" '^\s+"[a-z]+": +&[a-z]+\.Provider\{\},$' 14
}
