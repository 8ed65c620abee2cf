# llmpruner developer commands. Every target uses the project's Go settings:
# GOTOOLCHAIN=go1.27.3 (the go command fetches it), GOEXPERIMENT=simd, GOFLAGS= (empty).
#
#   make demo        stories260K end to end: prune 50% → LoRA recovery → dense/pruned/recovered table
#   make test        go vet + go test (the command CI runs)
#   make bench       the speed and memory benchmarks (minutes; run on a quiet machine), with the
#                    PyTorch reference of the LLaMA-7B layer when python3-torch is installed
#   make kernel      install the "llmpruner" Jupyter kernel (GoNB) for this working tree
#   make notebooks   execute tutorials/ and notebooks/ headless; fails on any error cell
#   make fuzz        mutate inputs for every fuzz target, FUZZTIME each (default 5s; CI does this);
#                    FUZZTIME=1000000x FUZZFLAGS="-parallel 1" is the soak the README reports
#   make fmt-check   list files gofmt would change (fails if any)
#   make docker-check  static checks of docker/ (no Docker engine needed)
#   make ci          everything CI does (.ci/run)

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

export GOTOOLCHAIN := go1.27.3
export GOEXPERIMENT := simd
export GOFLAGS :=

# Test data: $LLMPRUNER_DATA, else ../shared/data beside the clone when it exists. Made absolute
# because go test runs each package in its own directory.
LLMPRUNER_DATA ?= $(wildcard $(ROOT)/../shared/data)
ifneq ($(strip $(LLMPRUNER_DATA)),)
export LLMPRUNER_DATA := $(abspath $(LLMPRUNER_DATA))
endif
ifneq ($(strip $(LLMPRUNER_GOLDEN)),)
export LLMPRUNER_GOLDEN := $(abspath $(LLMPRUNER_GOLDEN))
endif

GO_TEST_FLAGS ?= -timeout 20m

.PHONY: demo test vet bench fuzz fmt-check kernel notebooks docker-check ci

demo:
	go run ./cmd/llmpruner demo

test: vet
	go test $(GO_TEST_FLAGS) ./...
	go test -tags xla ./lib/backend

# The XLA (GPU) backend is behind the build tag "xla": vet keeps that build compiling.
vet:
	go vet ./...
	go vet -tags xla ./lib/backend ./lib/lora ./cmd/llmpruner

# Benchmarks: model forward/backward (stories260K, a LLaMA-7B / ChatGLM-6B layer), Taylor importance
# time and peak memory, LoRA training vs full training, zero-shot with shared contexts, checkpoint
# loading memory. Ratios are meaningful within one run.
bench:
	go test -run '^$$' -bench . -benchtime 5x ./lib/models
	go test -run '^$$' -bench . -benchtime 2x ./lib/importance ./lib/lora
	go test -run '^$$' -bench . -benchtime 1x ./lib/eval ./lib/checkpoint
	-/usr/bin/python3 scripts/bench_torch_layer.py --threads $$(nproc)

FUZZTIME ?= 5s
FUZZFLAGS ?=
fuzz:
	scripts/fuzz.sh $(FUZZTIME) . $(FUZZFLAGS)

fmt-check:
	@files="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))"; \
	if [ -n "$$files" ]; then echo "gofmt needed on:"; echo "$$files"; exit 1; fi; echo "gofmt: ok"

kernel:
	go run ./kernel install

notebooks:
	scripts/run-notebooks.sh

docker-check:
	scripts/check-docker.sh

ci:
	CI=true bash .ci/run
