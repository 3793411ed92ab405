# Thin wrappers around the Go tool and deploy/local/clickhouse.sh.
# `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.NOTPARALLEL:
.DEFAULT_GOAL := build

# Go's default install location, for shells that do not have it on PATH.
ifeq ($(shell command -v go 2>/dev/null),)
export PATH := /usr/local/go/bin:$(PATH)
endif

GO ?= go
GOFMT ?= gofmt
PYTHON ?= /usr/bin/python3
FUZZTIME ?= 10s

# Ports of the local ClickHouse (read by deploy/local/clickhouse.sh too).
CLICKHOUSE_TCP_PORT ?= 9000
CLICKHOUSE_HTTP_PORT ?= 8123
export CLICKHOUSE_TCP_PORT CLICKHOUSE_HTTP_PORT

CLICKHOUSE := deploy/local/clickhouse.sh
# What the integration tests connect to (see internal/chdb/chdbtest).
TEST_ENV := ABACUS_TEST_CLICKHOUSE_URL=clickhouse://127.0.0.1:$(CLICKHOUSE_TCP_PORT)/default \
	ABACUS_REQUIRE_CLICKHOUSE=1

# Go files of the project (not the data folder or build output).
GO_FILES = find . \( -path ./.git -o -path ./data -o -path ./bin \) -prune -o -name '*.go' -print0

.PHONY: all help build run test test-short race-toolchain bench fuzz fmt fmt-check vet lint \
	generate testdata clickhouse-up clickhouse-down clickhouse-status clean

all: build

help:
	@echo "make build            build bin/abacus"
	@echo "make run              start ClickHouse, build, run ./bin/abacus serve (reads .env)"
	@echo "make test             gofmt check, go vet, lint, ClickHouse, go test -race, benchmarks once"
	@echo "make test-short       go test -short ./... (no ClickHouse)"
	@echo "make bench            ClickHouse, then benchmarks, 6 runs each, into bench.txt (benchstat)"
	@echo "make fuzz             each fuzz target for FUZZTIME (now $(FUZZTIME))"
	@echo "make fmt | vet | lint | generate"
	@echo "make testdata         regenerate the statistics reference files (SciPy)"
	@echo "make clickhouse-up | clickhouse-down | clickhouse-status"
	@echo "make clean            remove build output"

build:
	$(GO) build -o bin/abacus ./cmd/abacus

run: clickhouse-up build
	@[[ -f .env ]] || echo "run: no .env, using the defaults (see .env.example)"
	./bin/abacus serve

clickhouse-up:
	bash $(CLICKHOUSE) start

clickhouse-down:
	bash $(CLICKHOUSE) stop

clickhouse-status:
	bash $(CLICKHOUSE) status

test: fmt-check vet lint race-toolchain clickhouse-up
	$(TEST_ENV) $(GO) test -race -shuffle=on -timeout 20m ./...
	@echo "== benchmarks, once each"
	$(TEST_ENV) $(GO) test -run '^$$' -bench . -benchtime 1x ./...

test-short:
	$(GO) test -short ./...

# -race needs cgo, hence a C compiler; a fresh Debian machine may lack one.
race-toolchain:
	@cc=$$($(GO) env CC); \
	if ! command -v "$${cc%% *}" >/dev/null 2>&1; then \
		if [[ $$(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then \
			echo "race-toolchain: no C compiler ($$cc), installing gcc for go test -race"; \
			apt-get update; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y gcc libc6-dev; \
		else \
			echo "race-toolchain: go test -race needs a C compiler ($$cc): install gcc" >&2; \
			exit 1; \
		fi; \
	fi

# With ClickHouse, so that the benchmarks that write to it run too.
bench: clickhouse-up
	$(TEST_ENV) $(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench.txt

fuzz:
	@found=0; \
	pkgs=$$($(GO) list ./...); \
	for pkg in $$pkgs; do \
		list=$$($(GO) test -list '^Fuzz' "$$pkg"); \
		names=$$(grep '^Fuzz' <<<"$$list" || true); \
		for name in $$names; do \
			found=1; \
			echo "== $$pkg $$name ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done; \
	[[ $$found -eq 1 ]] || echo "fuzz: no fuzz targets"

fmt:
	$(GO_FILES) | xargs -0 -r $(GOFMT) -l -w

fmt-check:
	@out=$$($(GO_FILES) | xargs -0 -r $(GOFMT) -l); \
	if [[ -n $$out ]]; then \
		echo "gofmt: these files are not formatted (run make fmt):" >&2; \
		echo "$$out" >&2; \
		exit 1; \
	fi; \
	echo "gofmt: ok"

vet:
	$(GO) vet ./...

lint:
	@lint=$$(command -v golangci-lint || true); \
	[[ -n $$lint || ! -x "$$($(GO) env GOPATH)/bin/golangci-lint" ]] || lint="$$($(GO) env GOPATH)/bin/golangci-lint"; \
	if [[ -n $$lint ]]; then \
		echo "$$lint run ./..."; \
		"$$lint" run ./...; \
	else \
		echo "lint: golangci-lint is not installed, skipped"; \
	fi

generate:
	$(GO) generate ./...

# Regenerates the reference values of the statistics tests with SciPy.
testdata:
	@if ! $(PYTHON) -c 'import scipy' >/dev/null 2>&1; then \
		echo "testdata: no SciPy for $(PYTHON), installing it with apt-get"; \
		sudo=; [[ $$(id -u) -eq 0 ]] || sudo=sudo; \
		$$sudo apt-get update; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y \
			python3-scipy python3-numpy python3-statsmodels python3-mpmath; \
	fi
	@scripts=$$(find . \( -path ./.git -o -path ./data -o -path ./bin \) -prune -o \
		-path '*/testdata/gen_*.py' -print | sort); \
	[[ -n $$scripts ]] || { echo "testdata: no testdata/gen_*.py found"; exit 0; }; \
	for s in $$scripts; do \
		echo "== $(PYTHON) $$s"; \
		$(PYTHON) "$$s"; \
	done; \
	echo "testdata: done; review the changes with git diff"

clean:
	rm -rf bin bench.txt *.test *.out
