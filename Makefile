# SPDX-License-Identifier: MIT
# The two commands of the quick start, and the rest. CMake does the building; this file only
# installs what is missing (Debian packages, test data, npm packages) and calls it.
#   make run    install, build, start dip's main job
#   make test   install, build with -Werror, run every test; again under ASan+UBSan
#   make bench  benchmarks against OpenCV and libvips
#   make fuzz   build the libFuzzer targets and run each for FUZZ_SECONDS
JOBS ?= $(shell nproc)
# CTest slots: twice the cores. Most tests wait (on a server, a deadline, a heartbeat) more than
# they compute; the ones that keep the cores busy (browser, podman, mpi, golden, opencl, the long
# codec sweeps) take two slots each (PROCESSORS), and one browser or podman test runs at a time
# (RESOURCE_LOCK). tests/README.md, "Keeping make test fast", has the figures.
TEST_JOBS ?= $(shell echo $$(( $(JOBS) * 2 )))
MAKEFLAGS += --no-print-directory
BUILD ?= build

.PHONY: all deps test-deps test-packages build run test test-ci test-asan bench fuzz clean docs openapi-ops \
	check-format format check-layers test-times test-ci-run

all: build

deps:
	@tools/install-deps.sh build

test-deps: test-packages
	@tools/npm-deps.sh

# Debian packages and test data (make test installs the npm packages beside its build).
test-packages:
	@tools/install-deps.sh all
	@if [ -x tools/fetch-testdata.sh ]; then tools/fetch-testdata.sh; fi

build: deps
	@cmake --preset default >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	@tools/run.sh $(BUILD)/dip

# CI: the whole suite with -Werror, then once more under ASan+UBSan (less the tests labelled
# once); then the source checks (formatting and layers: quick, and last so that a formatting slip
# never hides a test result). The test folders' npm packages (make test-deps) install while the
# -Werror build compiles (they wait on the disk and the network: 9 s on a fresh clone). The ASan
# build runs at the lowest priority while the -Werror tests run (they leave a third of the two
# cores idle, waiting on servers and deadlines), so it takes almost no time of its own; its
# output is shown only if it fails.
test: test-packages
	@tools/npm-deps.sh > .npm-deps.log 2>&1 & npm=$$!; \
	  cmake --preset ci >/dev/null && cmake --preset asan >/dev/null && \
	  cmake --build build-ci -j$(JOBS); rc=$$?; \
	  wait $$npm; nrc=$$?; cat .npm-deps.log; rm -f .npm-deps.log; \
	  [ $$rc -eq 0 ] && [ $$nrc -eq 0 ]
	@nice -n 19 cmake --build build-asan -j$(JOBS) > build-asan/build.log 2>&1 & bg=$$!; \
	  $(MAKE) test-ci-run; rc=$$?; \
	  if ! wait $$bg; then cat build-asan/build.log; echo "make test: the ASan build failed"; \
	    exit 1; fi; exit $$rc
	@$(MAKE) test-asan
	@$(MAKE) check-layers check-format

# STYLE.md's formatting (clang-format v14, .clang-format) on every tracked C file; `make format`
# rewrites them. DESIGN.md's layers: no file includes a header of a layer above its own.
check-format:
	@tools/check-format.sh

format:
	@tools/check-format.sh --fix

check-layers:
	@/usr/bin/python3 tools/check-layers.py

# The 15 longest tests of the last make test in each build against their timeouts.
test-times:
	@for b in build-ci build-asan; do [ -f $$b/Testing/Temporary/LastTest.log ] && \
	  /usr/bin/python3 tests/harness/ctest-times.py $$b 15; done; true

test-ci:
	@cmake --preset ci >/dev/null
	@cmake --build build-ci -j$(JOBS)
	@$(MAKE) test-ci-run

test-ci-run:
	@rm -f build-ci/openapi-validated.log
	@cd build-ci && ctest -j$(TEST_JOBS) --output-on-failure --timeout 900
	@if [ -f build-ci/openapi-validated.log ]; then awk '{r+=$$2; e+=$$3; n++} END {printf \
	  "openapi: %d responses and %d events validated against docs/openapi.yaml in %d tests\n", \
	  r, e, n}' build-ci/openapi-validated.log; fi

test-asan:
	@cmake --preset asan >/dev/null
	@cmake --build build-asan -j$(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tools/sanitizers/lsan.supp \
	  ctest -j$(TEST_JOBS) --output-on-failure --timeout 900 -LE 'slow|e2e|bench|once'

bench: build
	@bench/run.sh $(BUILD)

docs: build
	@$(BUILD)/dip ops --markdown > docs/ops.md
	@cat docs/ops-seeds.md >> docs/ops.md
	@$(BUILD)/dip limits --markdown | /usr/bin/python3 tools/readme-limits.py README.md

# The OpName enum of docs/openapi.yaml, from the op table (a test fails when it is stale).
openapi-ops: build
	@/usr/bin/python3 tools/openapi.py ops $(BUILD)/dip docs/openapi.yaml

clean:
	rm -rf build build-ci build-asan build-tsan build-fuzz

-include mk/*.mk
