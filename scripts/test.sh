#!/usr/bin/env bash
# The test part of `make test`: every package's tests with -race, each suite
# against its real component, with the tool builds overlapped:
#
#   1. scripts/build-tools.sh starts in the background (niced; its log in
#      $ZTN_TEST_LOGDIR/build-tools.log, its progress lines shown here);
#   2. meanwhile, at normal priority: go vet, the tests of the packages whose
#      tests cannot start a tool (they do not import internal/test/testenv), and a
#      compile of the other packages' race test binaries;
#   3. once the tools are built: the tests of the other packages (and of the
#      bench/consulnative module), with ZTN_REQUIRE_TOOLS=1: a missing tool
#      fails them.
#
# Every step runs even when an earlier one failed (as go test ./... would);
# the exit status is 1 if any step failed, so make test fails.
#
# Environment: GO (default go), ZTN_TEST_LOGDIR (default a temp dir), and what
# build-tools.sh reads (ZTN_TOOLS_CACHE, ZTN_TOOLS_JOBS, GOFLAGS, ...).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
GO=${GO:-go}
export ZTN_REQUIRE_TOOLS=${ZTN_REQUIRE_TOOLS:-1}
LOGDIR=${ZTN_TEST_LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/ztn-test.XXXXXX")}
mkdir -p "$LOGDIR"
TESTENV=github.com/ztnlabs/ztn/internal/test/testenv

status=0
t0=$SECONDS
say() { printf '== %s [%dm%02ds]\n' "$*" $(((SECONDS - t0) / 60)) $(((SECONDS - t0) % 60)); }
step() { # step NAME CMD...: run CMD, note a failure
	say "$1"
	shift
	if ! "$@"; then
		say "FAILED: $*"
		status=1
	fi
}

# 1. tool builds, in the background.
say "building tools in the background (log: $LOGDIR/build-tools.log)"
# In its own process group (setsid), so that an interrupt stops its go builds.
setsid bash scripts/build-tools.sh >"$LOGDIR/build-tools.env" 2>"$LOGDIR/build-tools.log" &
tools_pid=$!
# Show its progress lines (not go's "downloading ..." chatter).
tail -n +1 -F --pid="$tools_pid" "$LOGDIR/build-tools.log" 2>/dev/null |
	grep --line-buffered -E '^build-tools: [a-z-]+: (building|built|cached)|ERROR|^build-tools: all built' &
tail_pid=$!
cleanup() {
	kill "$tail_pid" 2>/dev/null
	if kill -0 "$tools_pid" 2>/dev/null; then
		kill -- "-$tools_pid" 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Which packages' tests can start a tool: those whose test binaries import
# internal/test/testenv (and testenv's own).
mapfile -t all < <($GO list ./...)
mapfile -t withtools < <($GO list -test -f '{{if .ForTest}}{{.ForTest}} {{join .Deps " "}}{{end}}' ./... |
	awk -v te="$TESTENV" '{ for (i = 2; i <= NF; i++) if ($i == te) { print $1; break } } $1 == te { print $1 }' | sort -u)
mapfile -t notools < <(printf '%s\n' "${all[@]}" | grep -vxF -f <(printf '%s\n' "${withtools[@]}" ""))

# 2. meanwhile.
step "go vet ./..." $GO vet ./...
if [[ ${#notools[@]} -gt 0 ]]; then
	step "tests that need no tool (${#notools[@]} packages)" $GO test -race -count=1 -timeout 10m "${notools[@]}"
fi
say "compiling the race test binaries of the ${#withtools[@]} packages that use tools"
if ! $GO test -race -count=1 -run '^$' "${withtools[@]}" >"$LOGDIR/precompile.log" 2>&1; then
	# Not a failure by itself: the real run below reports it.
	say "(precompile reported errors; the run below shows them)"
fi

# 3. the rest, against the real components.
say "waiting for the tool builds"
wait "$tools_pid"
tools_status=$?
wait "$tail_pid" 2>/dev/null # tail stops once the builds have ended
if [[ $tools_status -eq 0 ]]; then
	say "tools ready"
	step "tests against the real components (${#withtools[@]} packages)" \
		$GO test -race -count=1 -timeout 30m "${withtools[@]}"
	step "bench/consulnative: vet and tests" \
		bash -c "cd bench/consulnative && $GO vet . && $GO test -race -count=1 -timeout 10m -run 'Test' ."
else
	say "FAILED: scripts/build-tools.sh (last lines of $LOGDIR/build-tools.log below); the tests that need its tools were not run"
	tail -n 30 "$LOGDIR/build-tools.log"
	status=1
fi

if [[ $status -eq 0 ]]; then
	say "PASS"
else
	say "FAIL"
fi
exit "$status"
