# medsynth: the two commands of the README, each doing its own set-up (idempotent).
#   make demo   end-to-end demo through Python on generated data
#   make test   every test: swift test, pytest, the notebooks, a short fuzzing run
#   make fuzz   the parsers fuzzed for longer (FUZZ_SECONDS per target, default 600)

PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
APT_PACKAGES := libopenblas-dev libpng-dev python3-dev pkg-config

.PHONY: all setup system-deps python-deps install demo test test-swift test-python test-fuzz fuzz test-asan bench pictures clean

all: test

# System libraries: installed only when pkg-config cannot find them.
system-deps:
	@if ! pkg-config --exists openblas libpng 2>/dev/null || ! dpkg -s python3-dev >/dev/null 2>&1; then \
		echo "installing $(APT_PACKAGES)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	fi

python-deps:
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements-dev.txt

# Builds the Swift engine (release) and the CPython extension, installed in editable mode so the
# tests use this checkout.
install: system-deps python-deps
	$(PYTHON) -m pip install -q --disable-pip-version-check --no-build-isolation -e .

setup: install

demo: setup
	cd /tmp && $(PYTHON) -m medsynth.demo

test: setup test-swift test-python test-fuzz

# OpenBLAS 0.3.21 mistakes AVX-512 CPUs it does not know (Zen 4) for Haswell; see python/medsynth/_cpu.py
OPENBLAS_ENV := $(shell grep -q avx512vl /proc/cpuinfo 2>/dev/null && echo OPENBLAS_CORETYPE=SkylakeX)

# Release build (with -enable-testing for @testable): the SIMD kernels are 100x slower unoptimised.
# Its own scratch folder, so it does not rebuild the Python package's release build.
test-swift: system-deps
	env $(OPENBLAS_ENV) swift test -c release -Xswiftc -enable-testing --scratch-path .build-test

test-python: install
	$(PYTHON) -m pytest -q python/tests

# libFuzzer (swift build --sanitize=fuzzer,address) on the PNG, safetensors and JSON parsers, from
# the seed corpus in Tests/Fuzz/corpus; a crash, leak or oversized allocation fails the target.
FUZZ_SECONDS ?= 600
test-fuzz: system-deps
	env $(OPENBLAS_ENV) Tests/Fuzz/run.sh 15

fuzz: system-deps
	env $(OPENBLAS_ENV) Tests/Fuzz/run.sh $(FUZZ_SECONDS)

# The Swift tests once under AddressSanitizer (release: the kernels are 100x slower unoptimised),
# in their own scratch folder. Run by .ci/run after make test. allocator_may_return_null: a refused
# allocation returns NULL (the engine turns it into MemoryError) instead of ASAN aborting.
test-asan: system-deps
	env $(OPENBLAS_ENV) ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 swift test -c release -Xswiftc -enable-testing --sanitize=address --scratch-path .build-asan

bench: setup
	$(PYTHON) -m medsynth.bench conv unet_train ddim_sample --json

# The README's phantom pictures (docs/phantoms_<domain>.png), regenerated from the generator.
pictures: setup
	$(PYTHON) python/tools/phantom_pictures.py --out docs

clean:
	rm -rf .build .build-test .build-fuzz .build-asan build python/medsynth/*.so python/*.egg-info
