# edge: build, test, demo and benchmark the suite.
#
#   make demo   install what it needs, build, start the suite in a namespace lab
#   make test   install what it needs, then unit, integration and rule tests
#
# Both need root on Debian (apt-get, network namespaces). See README.md.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO ?= go

# Debian packages the lab, the tests and the benchmarks use (DESIGN.md).
DEBIAN_PACKAGES := nftables iproute2 wireguard-tools wireguard-go nebula pebble \
	knot knot-dnsutils bind9-dnsutils prometheus nix-bin age curl iperf3 dnsperf \
	wrk haproxy nginx zbar-tools nmap iputils-ping tcpdump util-linux openssh-client

STATICCHECK_VERSION := v0.8.2  # staticcheck 2026.2.2
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/homeedge/edge/internal/suite.Version=$(VERSION)
FUZZTIME ?= 10s
# Commands built into bin/. edge-testd is the runtime contract's reference
# daemon (integration/edge-testd); edge-probe is the lab's traffic probe, which
# the demo uses too.
COMMANDS := ./cmd/... ./integration/edge-testd ./integration/edge-probe

.PHONY: all deps build test vet unit integration lint fuzz demo bench clean

all: build

deps:
	@scripts/deps.sh $(DEBIAN_PACKAGES)

build:
	@mkdir -p bin
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(COMMANDS)

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration/...

lint: vet
	@$(GO) mod tidy -diff >/dev/null || { $(GO) mod tidy -diff; echo "lint: go.mod is not tidy; run 'go mod tidy'"; exit 1; }
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags integration ./integration/...

# Unit tests, repository rules included; root-only tests in them (the lab,
# peer credentials) skip without root unless EDGE_REQUIRE_ROOT=1.
unit:
	$(GO) test -race -count=1 ./...

# Short runs of every fuzz target; see docs/testing.md for long ones.
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

# The end-to-end suite in namespace labs, as root.
integration:
	@if [ "$$(id -u)" -ne 0 ] && [ "$$EDGE_REQUIRE_ROOT" != 1 ]; then \
		echo "integration: not root; the tests will skip (run as root to execute them)"; fi
	set -o pipefail; $(GO) test -tags integration -count=1 -timeout 20m -v ./integration/ 2>&1 | scripts/test-summary.sh

test: deps build lint unit fuzz integration

demo: deps build
	@scripts/demo.sh

bench: deps build
	@scripts/bench.sh

clean:
	-@[ ! -x bin/edge-lab ] || bin/edge-lab clean
	rm -rf bin
