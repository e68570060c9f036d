# make test: everything CI checks — formatting, vet, and all tests with the
# race detector, each suite against its real component (Consul, Vault, SPIRE,
# grpcurl; built from pinned sources by scripts/build-tools.sh, overlapped
# with the tests that need none: see scripts/test.sh). Debian packages the
# tests need are installed first (scripts/deps.sh). A missing tool fails.
GO ?= go
export ZTN_REQUIRE_TOOLS ?= 1

.PHONY: test test-quick vet fmt deps tools bench fuzz

test: fmt deps
	GO=$(GO) bash scripts/test.sh

# The quick loop: no tool builds; tests needing a tool skip, one line each.
test-quick:
	ZTN_REQUIRE_TOOLS= $(GO) test -count=1 ./...

vet:
	$(GO) vet ./...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Debian packages the tests need (internal/tools/debian-packages.txt).
deps:
	bash scripts/deps.sh

# Builds (once, then cached by version) the real servers the tests run.
tools:
	bash scripts/build-tools.sh

# Benchmarks against raw crypto/tls in the same run, with ratios.
bench:
	bash scripts/bench.sh

# A short run of every fuzz target.
fuzz:
	bash scripts/fuzz.sh
