# Thin wrapper over meson/ninja. `make run` and `make test` work on a fresh
# Debian machine: they install what is missing, build, then run.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# What `make bench` measures: the build a router image ships (-Os, no tests;
# docs/benchmarks.md says why), not the debugoptimized build/ of make run.
BENCH_BUILD ?= build-release
MESON_OPTS ?=
FUZZ_SECONDS ?= 300

.PHONY: all deps build run test test-asan bench lint format fuzz fuzz-build clean testnet testnet-stop chaos

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD)

run: build
	./$(BUILD)/rampartd --dev

# A local 3-node cluster with mutual TLS and pins, left running (docs/cluster.md):
# var/testnet/env names its nodes; scripts/testnet-rounds.sh runs the pinned rounds.
testnet: build
	@RAMPART_BUILD=$(BUILD) scripts/testnet.sh start

testnet-stop:
	@scripts/testnet.sh stop

# The cluster fault tests at length: more rounds, longer client phases
# (`make test` runs one short round of each); see scripts/chaos.sh.
chaos: build
	@scripts/chaos.sh $(BUILD)

test: build fuzz-build
	@python3 scripts/run-tests.py --build $(BUILD) --fuzz-build $(FUZZ_BUILD)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug $(MESON_OPTS)

test-asan: deps $(ASAN_BUILD)/build.ninja
	@ninja -C $(ASAN_BUILD)
	@RAMPART_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		python3 scripts/run-tests.py --build $(ASAN_BUILD) --no-fuzz --slow-factor 3

# libFuzzer needs clang; meson 1.0 has no fuzzer sanitizer option, so the
# fuzz build is its own directory with the flags set by the `fuzz` option.
$(FUZZ_BUILD)/build.ninja:
	CC=clang CXX=clang++ meson setup $(FUZZ_BUILD) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -Dtests=true

fuzz-build: deps $(FUZZ_BUILD)/build.ninja
	@ninja -C $(FUZZ_BUILD) tests/fuzz_http_parser tests/fuzz_config tests/fuzz_tls_session

fuzz: fuzz-build
	@scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

$(BENCH_BUILD)/build.ninja:
	meson setup $(BENCH_BUILD) --buildtype=release -Doptimization=s -Dtests=false $(MESON_OPTS)

bench: deps $(BENCH_BUILD)/build.ninja
	@ninja -C $(BENCH_BUILD)
	@bench/run.sh $(BENCH_BUILD)

lint: deps
	@scripts/lint.sh

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.h' '*.c')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(BENCH_BUILD)
