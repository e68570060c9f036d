# make test: everything CI checks — formatting, vet, and all tests with the
# race detector. Real components the tests need are built first (see tools).
GO ?= go
export ZTN_REQUIRE_TOOLS ?= 1

.PHONY: test vet fmt tools bench fuzz

test: fmt vet tools
	$(GO) test -race -count=1 -timeout 30m ./...
	cd bench/consulnative && $(GO) vet . && $(GO) test -race -count=1 -timeout 10m -run 'Test' .

vet:
	$(GO) vet ./...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Builds (once, then cached by version) the real servers the tests run.
tools:
	bash scripts/build-tools.sh

# Benchmarks against raw crypto/tls in the same run, with ratios.
bench:
	bash scripts/bench.sh

# A short run of every fuzz target.
fuzz:
	bash scripts/fuzz.sh
