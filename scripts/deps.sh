#!/usr/bin/env bash
# Install the Debian packages the tests need (internal/tools/debian-packages.txt),
# if any is missing. `make test` runs it first.
#
#   scripts/deps.sh          check, and install what is missing (as root)
#   scripts/deps.sh --check  only check: exit 1 naming what is missing
#   scripts/deps.sh --list   print the package names
#
# Cheap when nothing is needed or all is installed (one dpkg-query). Missing
# packages are installed with apt-get when running as root; otherwise it stops
# with a message naming the packages and the command to install them. Nothing
# is skipped: a missing package fails make test.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIST=$ROOT/internal/tools/debian-packages.txt

log() { printf 'deps: %s\n' "$*" >&2; }
die() {
	printf 'deps: ERROR: %s\n' "$*" >&2
	exit 1
}

packages() { sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$LIST"; }

# missing PKG...: the ones dpkg does not report installed.
missing() {
	local p status
	for p in "$@"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[[ $status == installed ]] || printf '%s\n' "$p"
	done
}

main() {
	local mode=install pkgs miss
	case ${1:-} in
	"") ;;
	--check) mode=check ;;
	--list)
		packages
		return
		;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
		return
		;;
	*) die "unknown argument $1" ;;
	esac
	mapfile -t pkgs < <(packages)
	[[ ${#pkgs[@]} -gt 0 ]] || return 0
	command -v dpkg-query >/dev/null ||
		die "the tests need the Debian packages ${pkgs[*]} (or their equivalent); this is not a Debian-like system: install them yourself"
	mapfile -t miss < <(missing "${pkgs[@]}")
	[[ ${#miss[@]} -gt 0 ]] || return 0
	local cmd="apt-get install -y --no-install-recommends ${miss[*]}"
	if [[ $mode == check ]]; then
		die "missing Debian packages: ${miss[*]} (install: sudo $cmd)"
	fi
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		die "the tests need the Debian packages ${miss[*]}; install them with: sudo $cmd (or run make test as root)"
	fi
	log "installing ${miss[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# The package lists of a fresh machine may be empty or stale.
	apt-get update -qq || die "apt-get update failed"
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends "${miss[@]}" || die "apt-get install ${miss[*]} failed"
	mapfile -t miss < <(missing "${pkgs[@]}")
	[[ ${#miss[@]} -eq 0 ]] || die "still missing after apt-get install: ${miss[*]}"
	log "installed"
}

main "$@"
