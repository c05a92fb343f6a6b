# signer-agent build and test entry points. `make test` does all set-up
# (Debian packages, pinned tools) and then runs every test; `make demo` runs
# the main job end to end on the dev default.

SHELL        := /bin/bash
GO           ?= go
BIN          := $(CURDIR)/bin
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS      := -s -w -X github.com/stellaops/signer-agent/agent.Version=$(VERSION)
CTL_LDFLAGS  := $(LDFLAGS) -X main.version=$(VERSION)
COSIGN_VERSION := v3.1.3
NFPM_VERSION   := v2.45.2
# The local sigstore stack the keyless, trusted-root and tlog tests start
# (see sigstack below).
FULCIO_VERSION      := v1.8.8
TSA_VERSION         := v2.1.3
REKOR_TILES_VERSION := v2.3.0
# Debian packages the tests need.
DEB_PACKAGES := \
  systemd \
  openssl \
  util-linux \
  swtpm \
  swtpm-tools \
  softhsm2 \
  prometheus \
  libfido2-dev \
  strace \
  redis-server \
  openssh-client \
  iproute2 \
  lintian \
  gcc-aarch64-linux-gnu \
  libc6-dev-arm64-cross \
  binutils \
  ca-certificates
FUZZTIME     ?= 10s
export SIGNER_AGENT_COSIGN := $(BIN)/cosign
export SIGNER_AGENT_SIGSTACK_BIN := $(BIN)

.PHONY: all build run demo test test-go test-fido2 test-units test-observability tools sigstack deps fuzz bench soak lint docs clean dist dist-test

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -buildmode=pie -ldflags '$(LDFLAGS)' -o $(BIN)/signer-agent ./cmd/signer-agent
	$(GO) build -trimpath -buildmode=pie -ldflags '$(CTL_LDFLAGS)' -o $(BIN)/signerctl ./cmd/signerctl

# Run a dev agent in the foreground (state in ./.signer-agent-dev).
run: build
	$(BIN)/signer-agent --dev

demo: build tools
	bash test/demo/demo.sh

# Debian packages: installed when root, else the command to run is printed.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing Debian packages:$$missing"; echo "run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# Pinned tools from tools/go.mod, built into bin/.
tools: $(BIN)/cosign

$(BIN)/cosign: tools/go.mod tools/go.sum
	@mkdir -p $(BIN)
	cd tools && $(GO) build -trimpath -o $(BIN)/cosign github.com/sigstore/cosign/v3/cmd/cosign
	@$(BIN)/cosign version 2>/dev/null | grep -q "$(COSIGN_VERSION)" || { echo "cosign is not $(COSIGN_VERSION)"; exit 1; }
	@touch $(BIN)/cosign

# The local sigstore stack for tests: Fulcio (ephemeral CA), the RFC 3161
# timestamp authority (in-memory signer) and rekor-tiles (POSIX backend),
# built as binaries into bin/ with `go install pkg@version` outside this
# module (their dependency graphs do not fit go.mod; no replace directives
# are needed at these versions, whose go lines fit Go 1.26). A cold build
# takes about 2.5 minutes on an idle 2-core machine (measured 25 minutes with
# cosign's build competing on a heavily shared one) and fills about 2 GB of
# module cache; afterwards the target is up to date and costs nothing.
# rekor-tiles has one main per storage backend (cmd/rekor-server/posix),
# installed as `posix` and renamed here.
SIGSTACK_STAMP := $(BIN)/.sigstack-fulcio-$(FULCIO_VERSION)-tsa-$(TSA_VERSION)-rekor-tiles-$(REKOR_TILES_VERSION)

sigstack: $(SIGSTACK_STAMP)

# One stamp per set of versions: changing a pin rebuilds the three.
$(SIGSTACK_STAMP):
	@mkdir -p $(BIN)/.rekor-tiles
	cd / && GOBIN=$(BIN) GOFLAGS=-trimpath $(GO) install github.com/sigstore/fulcio@$(FULCIO_VERSION)
	cd / && GOBIN=$(BIN) GOFLAGS=-trimpath $(GO) install github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server@$(TSA_VERSION)
	cd / && GOBIN=$(BIN)/.rekor-tiles GOFLAGS=-trimpath $(GO) install github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix@$(REKOR_TILES_VERSION)
	mv $(BIN)/.rekor-tiles/posix $(BIN)/rekor-server-posix && rmdir $(BIN)/.rekor-tiles
	@rm -f $(BIN)/.sigstack-*
	@touch $@

# nfpm (the .deb builder) is pinned in its own module, tools/nfpm/go.mod,
# so that its dependencies never move cosign's.
$(BIN)/nfpm: tools/nfpm/go.mod tools/nfpm/go.sum
	@mkdir -p $(BIN)
	cd tools/nfpm && $(GO) build -trimpath -o $(BIN)/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm
	@$(GO) version -m $(BIN)/nfpm | grep -Eq '^[[:space:]]+mod[[:space:]]+github.com/goreleaser/nfpm/v2[[:space:]]+$(NFPM_VERSION)[[:space:]]' || { echo "nfpm is not $(NFPM_VERSION)"; exit 1; }
	@touch $(BIN)/nfpm

# Distribution (SPEC §13): .debs for amd64 and arm64, the OCI image layout
# and the signed offline kit under dist/ (docs/offline-kit.md). RELEASE_KEY=path
# signs the kit; without it a throwaway key is used (loudly).
dist: deps $(BIN)/nfpm
	GO=$(GO) BIN=$(BIN) bash packaging/dist/dist.sh

# Builds dist/ twice (reproducibility), then installs, upgrades, removes and
# purges the .deb, verifies and installs the kit offline, and runs the OCI
# image's rootfs (test/dist/run.sh; root).
dist-test: deps tools $(BIN)/nfpm
	GO=$(GO) BIN=$(BIN) bash test/dist/run.sh

test: deps tools sigstack build lint test-go test-fido2 test-units test-observability

test-go:
	$(GO) test -race -count=1 ./...

test-units: build
	bash test/units/check.sh $(BIN)/signer-agent

# The FIDO2 device backend (cgo, libfido2) builds and its package tests
# pass under the fido2 tag; the default build reports FIDO2 as unavailable.
test-fido2:
	$(GO) vet -tags fido2 ./internal/keys/fido2/
	$(GO) test -count=1 -tags fido2 ./internal/keys/fido2/

# Alert rules: promtool check rules and promtool test rules (Debian: prometheus).
test-observability:
	bash packaging/observability/check.sh

lint:
	$(GO) vet ./...
	$(GO) vet -tags faultinject ./cmd/signer-agent/
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Every fuzz target, briefly.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench: build
	bash test/bench/bench.sh

# The fault suite (test/fault) as a soak: every scenario keeps its load up
# for SOAK per phase (SIGNER_AGENT_SOAK), then the resource targets of issue
# #12 run on the real binary (rows appended to bin/soak-targets.md), then the
# limits-on/limits-off throughput benchmark. `make test` runs the short form.
# Needs root (tmpfs, setuid, prlimit) like the short form.
SOAK ?= 2m
soak: build
	SIGNER_AGENT_SOAK=$(SOAK) SIGNER_AGENT_TARGETS_OUT=$(BIN)/soak-targets.md $(GO) test -count=1 -timeout 0 -v ./test/fault/
	$(GO) test -run '^$$' -bench LimitsOverhead -benchtime 10000x -count 5 ./test/fault/

# docs/cli.md from signerctl's own help (TestCLIReference fails when stale).
docs:
	$(GO) test -count=1 -run '^TestCLIReference$$' ./cmd/signerctl/ -args -update-docs

clean:
	rm -rf $(BIN) .signer-agent-dev
