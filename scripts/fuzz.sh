#!/usr/bin/env bash
# Runs each fuzz target for FUZZTIME (default 30s). A failing input is
# minimized for at most FUZZMINIMIZETIME (default 10s): the examples' targets
# send requests to real servers, too slow for go's default minute.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-30s}
m=${FUZZMINIMIZETIME:-10s}
for pkg in $(go list ./...); do
  # A package whose tests do not build fails here, instead of being skipped.
  list=$(go test -list 'Fuzz.*' "$pkg")
  for f in $(grep '^Fuzz' <<<"$list" || true); do
    echo "== $pkg $f"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -fuzzminimizetime "$m" "$pkg"
  done
done
