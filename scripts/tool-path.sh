#!/usr/bin/env bash
# Print the cache path of a tool binary built by scripts/build-tools.sh
# (whether or not it has been built yet). Usage: scripts/tool-path.sh NAME
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 NAME" >&2; exit 2; }
exec "$(dirname "${BASH_SOURCE[0]}")/build-tools.sh" --path "$1"
