# Woodpecker. `make test` is the one command a fresh machine needs: it builds
# the test servers once (make tools) and runs every test against them.

GO ?= go
# How long each benchmark runs; LONG=1 also runs the long benchmarks
# (those that check WOODPECKER_BENCH_LONG).
BENCHTIME ?= 1s
BENCH ?= .
LONG ?= 0

# Nested Go modules (built, vetted and tested like the root one).
MILVUS_MOD := $(wildcard adaptor/milvus/go.mod)

.PHONY: all tools build run test lint bench chaos clean clean-tools proto mocks

all: build

## tools: build MinIO, versitygw, etcd and staticcheck once into .tools/
tools:
	bash scripts/tools.sh

## build: compile every package, and bin/woodpecker once cmd/woodpecker exists
build:
	$(GO) build ./...
ifneq ($(wildcard cmd/woodpecker/*.go),)
	$(GO) build -o bin/woodpecker ./cmd/woodpecker
endif
ifneq ($(MILVUS_MOD),)
	cd adaptor/milvus && $(GO) build ./...
endif

## run: build bin/woodpecker and run a short benchmark on the embedded default
## (etcd inside the process, data in ./data): appends and reads back RUN_TOTAL
## with a live progress bar, and compares every figure with the raw limit of
## the disk (--raw). Nothing needs installing.
RUN_TOTAL ?= 512MiB
run: build
	./bin/woodpecker bench --raw --total $(RUN_TOTAL)

## test: run all tests with -race against real MinIO and etcd (see README)
test: tools
	bash scripts/test.sh

## lint: go vet and staticcheck
lint:
	bash scripts/tools.sh staticcheck
	$(GO) vet ./...
	"$$(bash scripts/tools.sh --path staticcheck)" ./...
ifneq ($(MILVUS_MOD),)
	cd adaptor/milvus && $(GO) vet -tags test ./... && "$$(bash ../../scripts/tools.sh --path staticcheck)" -tags test ./...
endif

## proto: regenerate the checked-in gRPC code of quorum/quorumpb (needs
## protoc, protoc-gen-go and protoc-gen-go-grpc on PATH)
proto:
	protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative quorum/quorumpb/logstore.proto

## mocks: regenerate the checked-in go.uber.org/mock mocks of mocks/ (the
## transport and metadata interfaces; see mocks/generate.go). Run it after
## changing one of those interfaces, or the quorumpb service (make proto).
mocks:
	$(GO) generate ./mocks

## chaos: the chaos suite's long run (integration/chaos): CHAOS_CYCLES fault
## cycles per mode, CHAOS_MODE memory, quorum, journaled (QuorumBuffer on
## LogStores with journals), quorum-shared (QuorumBuffer whose LogStores
## write shared objects), localfs, both (memory and quorum), all, or a
## comma-separated list, CHAOS_SEED to rerun a
## failing seed (0: a new one), CHAOS_DURATION to stop starting cycles after
## that long per mode (e.g. 80m; 0: no limit); the history files, process logs and report go
## to .run/chaos/. Its short run is part of make test.
CHAOS_CYCLES ?= 1000
CHAOS_MODE ?= both
CHAOS_SEED ?= 0
CHAOS_DURATION ?= 0
CHAOS_FLAGS ?= -race
chaos: tools
	rm -rf .run/chaos && mkdir -p .run/chaos
	$(GO) test $(CHAOS_FLAGS) -count=1 -timeout 0 -v -run 'TestChaos$$' ./integration/chaos \
		-chaos.cycles=$(CHAOS_CYCLES) -chaos.mode=$(CHAOS_MODE) -chaos.seed=$(CHAOS_SEED) -chaos.duration=$(CHAOS_DURATION) -chaos.history=$(CURDIR)/.run/chaos

## bench: run benchmarks (no tests) against real servers
bench: tools
	WOODPECKER_BENCH_LONG=$(LONG) $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime=$(BENCHTIME) -benchmem -timeout 60m ./...

clean:
	rm -rf bin .run

## clean-tools: remove the cached server binaries (rebuilding takes minutes)
clean-tools:
	rm -rf "$${WOODPECKER_TOOLS_DIR:-.tools}"
