#!/usr/bin/env bash
# Benchmarks ztn against Consul's Connect-native Go package
# (github.com/hashicorp/consul/connect) and raw crypto/tls, against a real
# Consul agent, and prints the ratios. The benchmarks live in their own
# module, bench/consulnative, so that ztn does not depend on Consul's main
# module; they need the pinned consul binary, which this builds if missing.
#
#   scripts/bench-consul.sh            # COUNT=3 runs, the mean is reported
#
# Environment: COUNT (default 3), LATENCY_TIME (benchtime of the dial latency
# benchmark, default 3s), GOFLAGS (e.g. GOFLAGS=-p=1 on a busy machine; the
# first build compiles part of Consul and takes minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-3}
latency_time=${LATENCY_TIME:-3s}

consul_bin=$(bash scripts/build-tools.sh consul | sed -n 's/^ZTN_CONSUL_BIN=//p')
[[ -x "$consul_bin" ]] || { echo "bench-consul: no consul binary" >&2; exit 1; }
export ZTN_CONSUL_BIN=$consul_bin ZTN_REQUIRE_TOOLS=1

out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() { echo "== go test $*" >&2; (cd bench/consulnative && go test "$@") | grep -v '^ \{8\}20' | tee -a "$out" >&2; }
run -run '^$' -bench 'ConsulNativeNewConn' -benchtime 1x -count "$count" .
run -run '^$' -bench 'WarmDialLatency' -benchtime "$latency_time" -count "$count" .

awk '
/^Benchmark/ {
  name=$1; sub(/-[0-9]+$/, "", name)
  for (i = 3; i < NF; i++) if ($(i+1) !~ /^[0-9.]+$/) { sum[name, $(i+1)] += $i; n[name, $(i+1)]++ }
}
function mean(name, unit) { return n[name, unit] ? sum[name, unit] / n[name, unit] : 0 }
function line(what, value, unit, target) { printf "  %-52s %8.2f %s%s\n", what, value, unit, target ? "  (target " target ")" : "" }
END {
  print "\n== results (mean of " '"$count"' " runs)"
  p = "BenchmarkConsulNativeNewConn"
  printf "new connections/s at concurrency 16, full path (discovery + handshake + authz + 1-byte echo):\n"
  printf "  raw crypto/tls %.0f, consul native %.0f (static resolver %.0f), ztn %.0f (full handshakes only %.0f)\n",
    mean(p, "raw-conns/s"), mean(p, "native-conns/s"), mean(p, "native-static-conns/s"), mean(p, "ztn-conns/s"), mean(p, "ztn-full-conns/s")
  line("ztn (default: resumption) / consul native", mean(p, "ztn/native"), "x", ">= 2")
  line("ztn (full handshakes only) / consul native", mean(p, "ztn-full/native"), "x")
  line("consul native (ConsulResolver) / raw crypto/tls", mean(p, "native/raw"), "x")
  line("consul native (static resolver) / raw crypto/tls", mean(p, "native-static/raw"), "x")
  line("ztn (default) / raw crypto/tls", mean(p, "ztn/raw"), "x")
  line("ztn (full handshakes only) / raw crypto/tls", mean(p, "ztn-full/raw"), "x")
  p = "BenchmarkWarmDialLatency"
  printf "warm Dial latency, one at a time (p50 / p90, microseconds):\n"
  printf "  raw crypto/tls to the ztn server %.0f / %.0f, ztn %.0f / %.0f, ztn full handshakes %.0f / %.0f, consul native %.0f / %.0f\n",
    mean(p, "raw-p50-µs"), mean(p, "raw-p90-µs"), mean(p, "ztn-p50-µs"), mean(p, "ztn-p90-µs"),
    mean(p, "ztn-full-p50-µs"), mean(p, "ztn-full-p90-µs"), mean(p, "native-p50-µs"), mean(p, "native-p90-µs")
  line("ztn Dial p50 / raw crypto/tls dial p50", mean(p, "ztn/raw-p50"), "x")
  line("ztn Dial (full handshake) p50 / raw p50", mean(p, "ztn-full/raw-p50"), "x")
  line("consul native Dial p50 / raw p50", mean(p, "native/raw-p50"), "x")
}' "$out"
