#!/usr/bin/env bash
# Build the real components the tests run against (Consul, Vault, SPIRE) from the Go
# modules pinned in internal/tools, into a cache outside the repo:
#
#   ${ZTN_TOOLS_CACHE:-$HOME/.cache/ztn/tools}/<name>-<version>-<key>/<name>
#
# <version> is the version pinned in the tool's go.mod; <key> is the first 12 hex
# digits of sha256(go.mod + go.sum [+ patches.sh]) of the tool's module dir, so
# any change to the pins or patches builds a new binary. internal/test/testenv
# computes the same path (keep the two in step).
#
# Usage:
#   scripts/build-tools.sh [-j N] [NAME...]  build the missing ones (default: all,
#                                      N at a time, default 2), then print
#                                      NAME=PATH lines (ZTN_CONSUL_BIN=...)
#   scripts/build-tools.sh --path NAME print where NAME's binary lives (built or not)
#   scripts/build-tools.sh --list      print the known names
#   scripts/build-tools.sh --deps [NAME...]  print how many packages (and MB of
#                                      Go source) building NAME compiles: a
#                                      load-independent measure of its cost
#
# Idempotent and fast when cached. Safe when two invocations race: each tool is
# built under a flock(1) lock into a temp file that is renamed into place.
#
# A tool module dir may hold a patches.sh (part of the cache key): it names the
# modules to copy and patch (PATCH_MODULES), build tags (BUILD_TAGS) and
# patch_source MODULE DIR, which edits a copy with patch_once / delete_lines
# (both fail the build when upstream text drifted). The copies live in the
# tool's cache dir (<cache>/<name>-<version>-<key>/src) while it builds and are
# kept there when the build fails. The patches trim Vault, Consul and SPIRE to
# what the tests use; see internal/tools/README.md.
#
# Environment:
#   ZTN_TOOLS_CACHE  cache root (default $HOME/.cache/ztn/tools)
#   ZTN_TOOLS_NICE   nice level for the go builds (default 19)
#   ZTN_TOOLS_JOBS   tools built at once (default 2; -j overrides)
#   GOFLAGS          passed through to go (e.g. GOFLAGS=-p=1 on a busy machine)
#
# A cold build needs the Go module proxy. Vault v1.21.4 is BUSL-1.1: using it
# as a test dependency, as here, is permitted non-production use.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${ZTN_TOOLS_CACHE:-${HOME:?HOME is not set}/.cache/ztn/tools}
NICE=${ZTN_TOOLS_NICE:-19}

# name | module dir (relative to the repo) | module path | main package
# A new tool (e.g. SPIRE) gets its own module dir under internal/tools with a
# committed go.mod/go.sum, and one line per binary here:
#   spire-server|internal/tools/spire|github.com/spiffe/spire|github.com/spiffe/spire/cmd/spire-server
# Built in this order, ZTN_TOOLS_JOBS at a time: the biggest first, and the two
# SPIRE binaries (which share most packages) apart, so that spire-agent finds
# spire-server's packages in Go's build cache instead of compiling them too.
TOOLS=(
	"vault|internal/tools/vault|github.com/hashicorp/vault|github.com/hashicorp/vault"
	"consul|internal/tools|github.com/hashicorp/consul|github.com/hashicorp/consul"
	"spire-server|internal/tools/spire|github.com/spiffe/spire|github.com/spiffe/spire/cmd/spire-server"
	"grpcurl|internal/tools/grpcurl|github.com/fullstorydev/grpcurl|github.com/fullstorydev/grpcurl/cmd/grpcurl"
	"spire-agent|internal/tools/spire|github.com/spiffe/spire|github.com/spiffe/spire/cmd/spire-agent"
	"jaeger|internal/tools/jaeger|github.com/jaegertracing/jaeger|github.com/jaegertracing/jaeger/cmd/jaeger"
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
	PATCH_COUNT=$((PATCH_COUNT + 1))
}

# delete_lines FILE ERE N: delete the lines of FILE matching the extended
# regexp ERE; fail unless exactly N lines match.
delete_lines() {
	local file=$1 re=$2 want=$3 n
	[[ -f $file ]] || die "patch: $file does not exist"
	n=$(grep -cE -- "$re" "$file" || true)
	[[ $n -eq $want ]] || die "patch: expected $want lines matching /$re/ in $file, found $n"
	sed -i -E "\#$re#d" "$file"
	PATCH_COUNT=$((PATCH_COUNT + 1))
}

# replace_func FILE SIGNATURE BODY: replace the Go function whose first line
# starts with SIGNATURE (exactly one; gofmt'd, so it ends at the next line
# that is "}") by SIGNATURE followed by BODY.
replace_func() {
	local file=$1 sig=$2 body=$3 n
	[[ -f $file ]] || die "patch: $file does not exist"
	n=$(awk -v s="$sig" 'index($0, s) == 1 { n++ } END { print n + 0 }' "$file")
	[[ $n -eq 1 ]] || die "patch: expected 1 function starting '$sig' in $file, found $n"
	awk -v s="$sig" -v b="$body" '
		!skip && index($0, s) == 1 { print s b; skip = 1; next }
		skip && $0 == "}" { skip = 0; next }
		!skip { print }' "$file" >"$file.new" && mv "$file.new" "$file"
	PATCH_COUNT=$((PATCH_COUNT + 1))
}

# go_build DIR ARGS...: run go build in DIR, niced. The binaries are stripped
# (-s -w), so the compiler need not make DWARF either (-dwarf=false): 12% less
# CPU for a cold grpcurl build (241 s instead of 275 s user+sys).
go_build() {
	local dir=$1
	shift
	(cd "$dir" && nice -n "$NICE" go build -buildvcs=false -trimpath -ldflags '-s -w' -gcflags 'all=-dwarf=false' "$@")
}

# load_patches: read T_DIR/patches.sh (if any) into PATCH_MODULES, SRC_EXCLUDE,
# BUILD_TAGS and patch_source. See internal/tools/vault/patches.sh.
load_patches() {
	PATCH_MODULES=()
	SRC_EXCLUDE=()
	BUILD_TAGS=
	unset -f patch_source
	[[ -f $T_DIR/patches.sh ]] || return 0
	# shellcheck source=/dev/null
	source "$T_DIR/patches.sh"
	declare -F patch_source >/dev/null || die "$T_DIR/patches.sh defines no patch_source"
	[[ ${#PATCH_MODULES[@]} -gt 0 ]] || PATCH_MODULES=("$T_MOD")
}

# module_dir DIR MODULE: where the module cache holds the version of MODULE
# that DIR's go.mod selects (after its replaces), downloading it if needed.
module_dir() {
	local d
	d=$(cd "$1" && go mod download -json "$2" | awk -F'"' '$2 == "Dir" { print $4; exit }')
	[[ -n $d && -d $d ]] || die "no module cache dir for $2 (go mod download in $1)"
	printf '%s\n' "$d"
}

# prepare_patched_source SRCROOT: for a tool dir with patches.sh, copy each of
# PATCH_MODULES to SRCROOT/<n>, patch them (patch_source MODULE DIR), and write
# SRCROOT/ztn-build.mod (+ .sum): the tool's go.mod plus a replace of each module
# by its copy. Sets MODFILE_ARGS.
prepare_patched_source() {
	local srcroot=$1 mod moddir src i=0 e excl
	if [[ -e $srcroot ]]; then
		chmod -R u+w "$srcroot"
		rm -rf "$srcroot"
	fi
	mkdir -p "$srcroot"
	cp "$T_DIR/go.mod" "$srcroot/ztn-build.mod"
	cp "$T_DIR/go.sum" "$srcroot/ztn-build.sum"
	for mod in "${PATCH_MODULES[@]}"; do
		moddir=$(module_dir "$T_DIR" "$mod")
		src=$srcroot/$i-${mod##*/}
		i=$((i + 1))
		excl=()
		if [[ $mod == "$T_MOD" ]]; then
			for e in "${SRC_EXCLUDE[@]}"; do excl+=("--exclude=$e"); done
		fi
		mkdir -p "$src"
		(cd "$moddir" && tar cf - "${excl[@]}" .) | (cd "$src" && tar xf -)
		chmod -R u+w "$src"
		PATCH_COUNT=0
		patch_source "$mod" "$src"
		log "  $mod: $PATCH_COUNT patches applied to a copy in $src"
		(cd "$T_DIR" && go mod edit -replace "$mod=$src" "$srcroot/ztn-build.mod")
	done
	MODFILE_ARGS=("-modfile=$srcroot/ztn-build.mod")
}

# build_args: the go build arguments (after prepare) for T_PKG.
build_args() {
	BUILD_ARGS=("${MODFILE_ARGS[@]}")
	[[ -z $BUILD_TAGS ]] || BUILD_ARGS+=(-tags "$BUILD_TAGS")
}

build_one() {
	local name=$1 out dir tmp start lockfd
	tool_fields "$name"
	out=$(tool_path "$name")
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
	load_patches
	log "$name: building $T_PKG@$version from ${T_DIR#"$ROOT"/} (nice $NICE, GOFLAGS='${GOFLAGS:-}'${BUILD_TAGS:+, tags $BUILD_TAGS}) -> $out"
	start=$SECONDS
	MODFILE_ARGS=()
	if [[ ${#PATCH_MODULES[@]} -gt 0 ]]; then
		prepare_patched_source "$dir/src"
	fi
	build_args
	tmp=$dir/.$name.tmp.$$
	trap 'rm -f "'"$tmp"'"' EXIT
	if ! go_build "$T_DIR" "${BUILD_ARGS[@]}" -o "$tmp" "$T_PKG"; then
		[[ ! -e $dir/src ]] || die "$name: go build failed (patched sources kept in $dir/src)"
		die "$name: go build failed"
	fi
	# consul and vault have a version command; SPIRE's binaries a --version flag.
	"$tmp" version >/dev/null 2>&1 || "$tmp" --version >/dev/null 2>&1 ||
		die "$name: built binary does not run ('$tmp version' and '$tmp --version' failed)"
	mv -f "$tmp" "$out"
	trap - EXIT
	if [[ -e $dir/src ]]; then
		# The patched copies are only needed to build (kept when a build fails,
		# to look at); a rebuild makes them again and reuses Go's build cache.
		chmod -R u+w "$dir/src" && rm -rf "$dir/src"
	fi
	exec {lockfd}>&-
	log "$name: built in $((SECONDS - start))s: $out"
}

# deps_one NAME: what building NAME compiles, as a load-independent measure:
# the number of non-standard packages and the MB of their Go source.
deps_one() {
	local name=$1 tmpd
	tool_fields "$name"
	load_patches
	MODFILE_ARGS=()
	tmpd=$(mktemp -d)
	if [[ ${#PATCH_MODULES[@]} -gt 0 ]]; then
		(prepare_patched_source "$tmpd/src") 2>"$tmpd/log" || { cat "$tmpd/log" >&2; exit 1; }
		MODFILE_ARGS=("-modfile=$tmpd/src/ztn-build.mod")
	fi
	build_args
	(cd "$T_DIR" && go list "${BUILD_ARGS[@]}" -deps -f '{{if not .Standard}}@{{range .GoFiles}}{{$.Dir}}/{{.}}
{{end}}{{range .CgoFiles}}{{$.Dir}}/{{.}}
{{end}}{{end}}' "$T_PKG") >"$tmpd/files" || die "$name: go list failed"
	printf '%s: %d packages, %s MB of Go source\n' "$name" "$(grep -c '^@' "$tmpd/files")" \
		"$(sed 's/^@//' "$tmpd/files" | grep -v '^$' | tr '\n' '\0' | xargs -0 stat -c %s | awk '{ s += $1 } END { printf "%.1f", s / 1e6 }')"
	chmod -R u+w "$tmpd" && rm -rf "$tmpd"
}

main() {
	local jobs=${ZTN_TOOLS_JOBS:-2}
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
	--deps)
		shift
		local n names=("$@")
		[[ $# -gt 0 ]] || mapfile -t names < <(list_names)
		for n in "${names[@]}"; do deps_one "$n"; done
		return
		;;
	-j)
		[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "usage: $0 -j N [NAME...]"
		jobs=$2
		shift 2
		;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
		return
		;;
	-*) die "unknown option $1" ;;
	esac
	command -v go >/dev/null || die "go is not on PATH"

	local names=("$@") name pid failed=() running=()
	declare -A pids=()
	[[ ${#names[@]} -gt 0 ]] || mapfile -t names < <(list_names)
	for name in "${names[@]}"; do tool_fields "$name"; done # validate first
	local t0=$SECONDS
	for name in "${names[@]}"; do
		# at most $jobs builds at once; the cached ones return at once
		while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do wait -n || true; done
		build_one "$name" &
		pids[$name]=$!
	done
	for name in "${names[@]}"; do
		wait "${pids[$name]}" || failed+=("$name")
	done
	[[ ${#failed[@]} -eq 0 ]] || die "failed to build: ${failed[*]}"
	[[ $((SECONDS - t0)) -lt 2 ]] || log "all built in $((SECONDS - t0))s"
	for name in "${names[@]}"; do
		printf 'ZTN_%s_BIN=%s\n' "$(tr 'a-z-' 'A-Z_' <<<"$name")" "$(tool_path "$name")"
	done
}

main "$@"
