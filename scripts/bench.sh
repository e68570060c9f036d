#!/usr/bin/env bash
# Runs ztn's benchmarks next to raw crypto/tls in the same run and prints the
# ratios the issues ask for. COUNT (default 5) repetitions; the mean is used.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "== go test -run '^\$' -bench 'NewConn|Bulk|IdleConnHeap' -count $count ./ztnet" >&2
go test -run '^$' -bench 'NewConn|Bulk|IdleConnHeap' -benchtime "${BENCHTIME:-2s}" -count "$count" ./ztnet | tee -a "$out" >&2
echo "== go test -run '^\$' -bench 'Authorize' -benchmem -count $count ./authz" >&2
go test -run '^$' -bench 'Authorize' -benchmem -count "$count" ./authz | tee -a "$out" >&2

awk '
/^Benchmark/ {
  name=$1; sub(/-[0-9]+$/, "", name)
  for (i = 3; i < NF; i++) {
    unit=$(i+1)
    if (unit == "conns/s" || unit == "MB/s" || unit == "B/conn" || unit == "ns/op" || unit == "allocs/op") {
      sum[name, unit] += $i; n[name, unit]++
    }
  }
}
function mean(name, unit) { return n[name, unit] ? sum[name, unit] / n[name, unit] : 0 }
function ratio(what, a, b, unit, target) {
  x = mean(a, unit); y = mean(b, unit)
  if (x && y) printf "%-52s %10.1f / %10.1f %-8s = %5.2fx  (target %s)\n", what, x, y, unit, x / y, target
}
END {
  print ""
  print "== ratios (same run, mean of runs)"
  for (c = 1; c <= 16; c += 15) {
    p = "BenchmarkNewConn/c=" c
    ratio("new conns, c=" c ", ztnet full handshake vs raw TLS", p "/ztnet-full", p "/raw-tls", "conns/s", ">= 0.9x")
    ratio("new conns, c=" c ", ztnet default (resumption) vs raw TLS", p "/ztnet-resume", p "/raw-tls", "conns/s", ">= 1.3x")
  }
  ratio("bulk throughput, one conn, ztnet vs raw TLS", "BenchmarkBulk/ztnet", "BenchmarkBulk/raw-tls", "MB/s", ">= 0.95x")
  ratio("heap per idle conn, ztnet vs raw TLS", "BenchmarkIdleConnHeap/ztnet", "BenchmarkIdleConnHeap/raw-tls", "B/conn", "<= 1.1x")
  for (k in n) {
    split(k, parts, SUBSEP)
    if (parts[1] ~ /Authorize/ && (parts[2] == "ns/op" || parts[2] == "allocs/op"))
      printf "%-52s %10.1f %s\n", parts[1], mean(parts[1], parts[2]), parts[2]
  }
}' "$out"
