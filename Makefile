# arc: build, test and sample targets. `make test` is what CI runs (.ci/run).
GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# The GPU package uses OpenCL through cgo.
export CGO_ENABLED := 1

# System packages the tests use; installed by `make deps` when missing and root.
APT_PKGS := fuse3 attr acl rsync squashfs-tools squashfuse lz4 zstd groff-base \
            ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd clinfo gcc libc6-dev pkg-config

# Packages whose tests run under the race detector (concurrent pipelines).
RACE_PKGS  = $(shell $(GO) list ./reader/... ./cache/... ./fs/... ./writer/... 2>/dev/null)
OTHER_PKGS = $(filter-out $(RACE_PKGS) arc/integration,$(shell $(GO) list ./...))

.PHONY: all build test deps fmt-check vet unit unit-race unit-other integration sample clean \
        bench-pack bench-mount bench-codec bench-ratio bench bench-quick bench-deps

all: build

build:
	@mkdir -p bin
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/arcpack ./cmd/arcpack
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/arcmount ./cmd/arcmount

test: deps fmt-check vet unit integration

deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		missing=""; \
		for p in $(APT_PKGS); do \
			dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
		done; \
		if [ -n "$$missing" ]; then \
			echo "installing:$$missing"; \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
		fi; \
	else \
		echo "deps: not root or no apt-get; assuming$(APT_PKGS:%= %) are present"; \
	fi

fmt-check:
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# A hung test fails after TEST_TIMEOUT instead of eating the CI budget.
TEST_TIMEOUT ?= 6m
unit: unit-race unit-other
unit-race:
	@if [ -n "$(strip $(RACE_PKGS))" ]; then $(GO) test -race -timeout $(TEST_TIMEOUT) $(RACE_PKGS); fi
unit-other:
	$(GO) test -timeout $(TEST_TIMEOUT) $(OTHER_PKGS)

integration:
	$(GO) test -count=1 -timeout 10m ./integration/

# sample: the main job end to end on a tree it makes itself.
SAMPLE := $(CURDIR)/bin/sample
sample: build
	@rm -rf $(SAMPLE) && mkdir -p $(SAMPLE)
	$(GO) run ./internal/testtree/gentree -seed 1 -large 20M $(SAMPLE)/src
	bin/arcpack create $(SAMPLE)/src -o $(SAMPLE)/archive --volume-size 8M --frame-size 4M
	bin/arcpack info $(SAMPLE)/archive.001
	bin/arcpack list -l $(SAMPLE)/archive.001 links
	bin/arcpack verify $(SAMPLE)/archive.001
	bin/arcpack extract $(SAMPLE)/archive.001 -o $(SAMPLE)/restored
	$(GO) run ./internal/testtree/gentree -compare $(SAMPLE)/src $(SAMPLE)/restored
	@if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null 2>&1; then \
		mkdir -p $(SAMPLE)/mnt && \
		bin/arcmount $(SAMPLE)/archive.001 $(SAMPLE)/mnt && \
		{ $(GO) run ./internal/testtree/gentree -compare -no-sparse $(SAMPLE)/src $(SAMPLE)/mnt; rc=$$?; \
		  fusermount3 -u $(SAMPLE)/mnt; exit $$rc; }; \
	else echo "sample: no FUSE here, mount step skipped"; fi
	@echo "sample: all steps passed; files in $(SAMPLE)"

# bench: the whole comparison of issue 8 (bench/bench.sh): arcpack's levels against the peers on the
# Go toolchains tree and a many-small-files tree; writes bench/RESULTS.md and bench/chart-*.svg.
# bench-quick: the same on a small tree, one run each (bench/results/quick/). Knobs: RUNS, BENCH_ONLY,
# MANY_N, RANDREAD_N (see bench/bench.sh).
BENCH_PKGS := fuse3 squashfs-tools squashfuse lz4 zstd borgbackup restic archivemount time bc
bench: build bench-deps
	bench/bench.sh
bench-quick: build bench-deps
	bench/bench.sh --quick
# The peers are optional: `deps` on the bench list; what it cannot install bench.sh skips and names.
bench-deps:
	@$(MAKE) --no-print-directory deps APT_PKGS='$(BENCH_PKGS)' || echo "bench-deps: some peers could not be installed; bench.sh skips what is missing"

bench-pack:
	bench/pack.sh
bench-mount:
	bench/mount.sh
bench-codec:
	bench/codec.sh
bench-ratio:
	bench/ratio.sh

clean:
	rm -rf bin

# man: the manual pages of arcpack (one per command) and arcmount into bin/man
# (read one with man -l bin/man/arcpack-create.1; install: copy to /usr/local/share/man/man1).
.PHONY: man
man: build
	bin/arcpack man bin/man
	bin/arcmount --man bin/man

# Reliability long runs (docs/RELIABILITY.md), not for CI: 200 seeded
# fault trials (TRIALS, SEED, MOUNTS) and every fuzz target for FUZZTIME
# (default 10 minutes each; corpus kept in testdata).
.PHONY: bench-faults bench-fuzz
bench-faults:
	bench/faults.sh
bench-fuzz:
	bench/fuzz.sh
