#!/usr/bin/env bash
# Build the real components the tests run against (Consul, Vault, SPIRE) from the Go
# modules pinned in internal/tools, into a cache outside the repo:
#
#   ${ZTN_TOOLS_CACHE:-$HOME/.cache/ztn/tools}/<name>-<version>-<key>/<name>
#
# <version> is the version pinned in the tool's go.mod; <key> is the first 12 hex
# digits of sha256(go.mod + go.sum [+ patches.sh]) of the tool's module dir, so
# any change to the pins or patches builds a new binary. internal/testenv
# computes the same path (keep the two in step).
#
# Usage:
#   scripts/build-tools.sh [NAME...]   build the missing ones (default: all), then
#                                      print NAME=PATH lines (ZTN_CONSUL_BIN=...)
#   scripts/build-tools.sh --path NAME print where NAME's binary lives (built or not)
#   scripts/build-tools.sh --list      print the known names
#
# Idempotent and fast when cached. Safe when two invocations race: each tool is
# built under a flock(1) lock into a temp file that is renamed into place.
#
# Environment:
#   ZTN_TOOLS_CACHE  cache root (default $HOME/.cache/ztn/tools)
#   ZTN_TOOLS_NICE   nice level for the go builds (default 19)
#   GOFLAGS          passed through to go (e.g. GOFLAGS=-p=1 on a busy machine)
#
# A cold build needs the Go module proxy (first time: several minutes for
# Consul, 10+ minutes for Vault on 2 cores). Vault v1.21.4 is BUSL-1.1: using it
# as a test dependency, as here, is permitted non-production use.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${ZTN_TOOLS_CACHE:-${HOME:?HOME is not set}/.cache/ztn/tools}
NICE=${ZTN_TOOLS_NICE:-19}

# name | module dir (relative to the repo) | module path | main package
# A new tool (e.g. SPIRE) gets its own module dir under internal/tools with a
# committed go.mod/go.sum, and one line per binary here:
#   spire-server|internal/tools/spire|github.com/spiffe/spire|github.com/spiffe/spire/cmd/spire-server
TOOLS=(
	"consul|internal/tools|github.com/hashicorp/consul|github.com/hashicorp/consul"
	"vault|internal/tools/vault|github.com/hashicorp/vault|github.com/hashicorp/vault"
	"spire-server|internal/tools/spire|github.com/spiffe/spire|github.com/spiffe/spire/cmd/spire-server"
	"spire-agent|internal/tools/spire|github.com/spiffe/spire|github.com/spiffe/spire/cmd/spire-agent"
	"grpcurl|internal/tools/grpcurl|github.com/fullstorydev/grpcurl|github.com/fullstorydev/grpcurl/cmd/grpcurl"
)

log() { printf 'build-tools: %s\n' "$*" >&2; }
die() {
	printf 'build-tools: ERROR: %s\n' "$*" >&2
	exit 1
}

# tool_fields NAME: sets T_NAME T_DIR T_MOD T_PKG (T_DIR absolute).
tool_fields() {
	local line
	for line in "${TOOLS[@]}"; do
		IFS='|' read -r T_NAME T_DIR T_MOD T_PKG <<<"$line"
		if [[ $T_NAME == "$1" ]]; then
			T_DIR=$ROOT/$T_DIR
			return 0
		fi
	done
	die "unknown tool '$1' (known: $(list_names | tr '\n' ' '))"
}

list_names() {
	local line
	for line in "${TOOLS[@]}"; do printf '%s\n' "${line%%|*}"; done
}

# pinned_version DIR MODULE: the version of MODULE required by DIR/go.mod.
pinned_version() {
	local v
	v=$(awk -v m="$2" '
		$1 == "require" && $2 == m && $3 ~ /^v/ { print $3; exit }
		$1 == m && $2 ~ /^v/ { print $2; exit }' "$1/go.mod")
	[[ -n $v ]] || die "$2 is not required in $1/go.mod"
	printf '%s\n' "$v"
}

# cache_key DIR: hash of the files that determine the build.
cache_key() {
	local files=("$1/go.mod" "$1/go.sum")
	[[ -f $1/patches.sh ]] && files+=("$1/patches.sh")
	cat "${files[@]}" | sha256sum | cut -c1-12
}

# tool_path NAME: the cached binary's path.
tool_path() {
	tool_fields "$1"
	local v k
	v=$(pinned_version "$T_DIR" "$T_MOD")
	k=$(cache_key "$T_DIR")
	printf '%s/%s-%s-%s/%s\n' "$CACHE" "$T_NAME" "$v" "$k" "$T_NAME"
}

# patch_once FILE OLD NEW: replace the only occurrence of OLD in FILE by NEW;
# fail if OLD occurs zero or several times.
patch_once() {
	local file=$1 old=$2 new=$3 content rest n
	[[ -f $file ]] || die "patch: $file does not exist"
	IFS= read -r -d '' content <"$file" || true
	rest=${content//"$old"/}
	n=$(((${#content} - ${#rest}) / ${#old}))
	[[ $n -eq 1 ]] || die "patch: expected exactly 1 occurrence in $file, found $n: $old"
	content=${content/"$old"/"$new"}
	printf '%s' "$content" >"$file"
	log "  patched ${file#"$ROOT"/}"
}

go_build() { # go_build DIR ARGS...: run go build in DIR, niced.
	local dir=$1
	shift
	(cd "$dir" && nice -n "$NICE" go build -buildvcs=false -trimpath -ldflags '-s -w' "$@")
}

# prepare_patched_source: for a tool dir with patches.sh, make DIR/<base>-src, a
# patched copy of the module, and DIR/<base>-src/ztn-build.mod (+ .sum), the
# tool's go.mod plus a replace of the module by the copy. Sets MODFILE_ARGS.
prepare_patched_source() {
	local base src moddir
	base=${T_MOD##*/}
	src=$T_DIR/$base-src
	SRC_EXCLUDE=()
	unset -f patch_source
	# shellcheck source=/dev/null
	source "$T_DIR/patches.sh"
	declare -F patch_source >/dev/null || die "$T_DIR/patches.sh defines no patch_source"

	(cd "$T_DIR" && go mod download "$T_MOD") || die "go mod download $T_MOD failed"
	moddir=$(cd "$T_DIR" && go list -m -f '{{.Dir}}' "$T_MOD")
	[[ -n $moddir && -d $moddir ]] || die "no module cache dir for $T_MOD"

	log "  copying $T_MOD source to ${src#"$ROOT"/}"
	if [[ -e $src ]]; then
		chmod -R u+w "$src"
		rm -rf "$src"
	fi
	mkdir -p "$src"
	local excl=() e
	for e in "${SRC_EXCLUDE[@]}"; do excl+=("--exclude=$e"); done
	(cd "$moddir" && tar cf - "${excl[@]}" .) | (cd "$src" && tar xf -)
	chmod -R u+w "$src"

	patch_source "$src"

	cp "$T_DIR/go.mod" "$src/ztn-build.mod"
	cp "$T_DIR/go.sum" "$src/ztn-build.sum"
	(cd "$T_DIR" && go mod edit -replace "$T_MOD=$src" "$src/ztn-build.mod")
	MODFILE_ARGS=("-modfile=$src/ztn-build.mod")
}

build_one() {
	local name=$1 out dir tmp start lockfd
	tool_fields "$name"
	out=$(tool_path "$name")
	BUILT[$name]=$out
	dir=$(dirname "$out")
	if [[ -x $out ]]; then
		log "$name: cached: $out"
		return 0
	fi
	mkdir -p "$dir"
	exec {lockfd}>"$dir/.lock"
	if command -v flock >/dev/null; then
		if ! flock -n "$lockfd"; then
			log "$name: another build holds $dir/.lock; waiting"
			flock "$lockfd"
		fi
	fi
	if [[ -x $out ]]; then # built by whoever held the lock
		log "$name: cached: $out"
		exec {lockfd}>&-
		return 0
	fi

	local version
	version=$(pinned_version "$T_DIR" "$T_MOD")
	log "$name: building $T_PKG@$version from ${T_DIR#"$ROOT"/} (nice $NICE, GOFLAGS='${GOFLAGS:-}') -> $out"
	start=$SECONDS
	MODFILE_ARGS=()
	if [[ -f $T_DIR/patches.sh ]]; then
		prepare_patched_source
	fi
	tmp=$dir/.$name.tmp.$$
	trap 'rm -f "'"$tmp"'"' EXIT
	go_build "$T_DIR" "${MODFILE_ARGS[@]}" -o "$tmp" "$T_PKG" || die "$name: go build failed"
	# consul and vault have a version command; SPIRE's binaries a --version flag.
	"$tmp" version >/dev/null 2>&1 || "$tmp" --version >/dev/null 2>&1 ||
		die "$name: built binary does not run ('$tmp version' and '$tmp --version' failed)"
	mv -f "$tmp" "$out"
	trap - EXIT
	if [[ ${#MODFILE_ARGS[@]} -gt 0 ]]; then
		# The patched copy is only needed to build (kept when a build fails, to
		# look at); a rebuild makes it again and reuses Go's build cache.
		local src=${MODFILE_ARGS[0]#-modfile=}
		src=$(dirname "$src")
		chmod -R u+w "$src" && rm -rf "$src"
	fi
	exec {lockfd}>&-
	log "$name: built in $((SECONDS - start))s: $out"
}

main() {
	case ${1:-} in
	--path)
		[[ $# -eq 2 ]] || die "usage: $0 --path NAME"
		tool_path "$2"
		return
		;;
	--list)
		list_names
		return
		;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
		return
		;;
	-*) die "unknown option $1" ;;
	esac
	command -v go >/dev/null || die "go is not on PATH"

	local names=("$@") name
	declare -gA BUILT=()
	[[ ${#names[@]} -gt 0 ]] || mapfile -t names < <(list_names)
	for name in "${names[@]}"; do tool_fields "$name"; done # validate first
	for name in "${names[@]}"; do build_one "$name"; done
	for name in "${names[@]}"; do
		printf 'ZTN_%s_BIN=%s\n' "$(tr 'a-z-' 'A-Z_' <<<"$name")" "${BUILT[$name]}"
	done
}

main "$@"
