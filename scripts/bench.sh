#!/usr/bin/env bash
# Runs ztn's benchmarks next to raw crypto/tls in the same run and prints the
# ratios the issues ask for. The paired benchmarks alternate the contenders
# in short slices, so background load affects them alike. COUNT (default 3)
# repetitions; the mean is reported.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() { echo "== go test $*" >&2; go test "$@" | tee -a "$out" >&2; }
run -run '^$' -bench 'Paired|IdleConnHeap' -benchtime 1x -count "$count" ./ztnet
run -run '^$' -bench 'Authorize' -benchmem -count "$count" ./authz
run -run '^$' -bench 'PairedUnary' -benchtime 1x -count "$count" ./grpcztn
run -run '^$' -bench 'PairedRequests' -benchtime 1x -count "$count" ./httpztn

awk '
/^Benchmark/ {
  name=$1; sub(/-[0-9]+$/, "", name)
  for (i = 3; i < NF; i++) if ($(i+1) !~ /^[0-9.]+$/) { sum[name, $(i+1)] += $i; n[name, $(i+1)]++ }
}
function mean(name, unit) { return n[name, unit] ? sum[name, unit] / n[name, unit] : 0 }
function line(what, value, unit, target) { printf "%-58s %10.2f %-14s (target %s)\n", what, value, unit, target }
END {
  print "\n== results (mean of " '"$count"' " runs)"
  for (c = 1; c <= 16; c += 15) {
    p = "BenchmarkPairedNewConn/c=" c
    printf "new conns c=%-2d: raw TLS %.0f/s, ztnet full %.0f/s, ztnet default (resumption) %.0f/s\n", c, mean(p, "raw-conns/s"), mean(p, "full-conns/s"), mean(p, "resume-conns/s")
    line("  ztnet full handshakes / raw TLS", mean(p, "full/raw"), "x", ">= 0.9")
    line("  ztnet default (resumption) / raw TLS", mean(p, "resume/raw"), "x", ">= 1.3")
    line("  (reference: crypto/tls resumption / raw TLS)", mean(p, "rawresume/raw"), "x", "none")
  }
  p = "BenchmarkPairedBulk"
  printf "bulk, one conn: raw TLS %.0f MB/s, ztnet %.0f MB/s\n", mean(p, "raw-MB/s"), mean(p, "ztnet-MB/s")
  line("  ztnet / raw TLS", mean(p, "ztnet/raw"), "x", ">= 0.95")
  r = mean("BenchmarkIdleConnHeap/raw-tls", "B/conn"); z = mean("BenchmarkIdleConnHeap/ztnet", "B/conn")
  printf "heap per idle conn (both ends): raw TLS %.0f B, ztnet %.0f B\n", r, z
  if (r) line("  ztnet / raw TLS", z / r, "x", "<= 1.1")
  # The adapters against the same grpc-go / net/http stack over crypto/tls,
  # with the same instrumentation and access record on both sides.
  split("default bare accesslog", stacks, " ")
  for (s = 1; s <= 3; s++) for (c = 1; c <= 16; c += 15) {
    p = "BenchmarkPairedUnary/" stacks[s] "/c=" c
    if (n[p, "ztn/tls"]) line(sprintf("gRPC unary %s c=%d: ztn / tls (per CPU second %.2f)", stacks[s], c, mean(p, "ztn/tls-cpu")), mean(p, "ztn/tls"), "x", ">= 0.9")
    p = "BenchmarkPairedRequests/" stacks[s] "/c=" c
    if (n[p, "ztn/tls"]) line(sprintf("HTTP/2 GET %s c=%d: ztn / tls (per CPU second %.2f)", stacks[s], c, mean(p, "ztn/tls-cpu")), mean(p, "ztn/tls"), "x", ">= 0.9")
  }
  for (k in n) {
    split(k, parts, SUBSEP)
    if (parts[1] ~ /AuthorizeL4/ && parts[2] == "ns/op")
      printf "%-58s %8.1f ns/op %4.1f allocs/op (target <= 1000 ns, 0 allocs)\n", parts[1], mean(parts[1], "ns/op"), mean(parts[1], "allocs/op")
  }
}' "$out"
