# SPDX-License-Identifier: MIT
# Fuzzing and third-party test data, included from the top Makefile.
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="png jpeg"]  build the libFuzzer targets with clang
#       (preset `fuzz`: ASan+UBSan), generate the seed corpora, run each target for FUZZ_SECONDS;
#       every crash is kept under tests/data/crashers/<format>/ (replayed by ctest -L fuzz-replay).
#   make fuzz-corpus     only (re)generate the seed corpora under $(FUZZ_BUILD)/corpus/
#   make testdata        fetch the conformance files into $(DIP_TEST_CACHE) (quick when cached)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= png jpeg webp tiff gif bmp pnm
FUZZ_BUILD ?= build-fuzz
FUZZ_JOBS ?= 1
FUZZ_PAR = $(if $(filter-out 0 1,$(FUZZ_JOBS)),-jobs=$(FUZZ_JOBS) -workers=$(FUZZ_JOBS),)
FUZZ_RSS_MB ?= 2048
DIP_TEST_CACHE ?= $(CURDIR)/.cache
export DIP_TEST_CACHE

.PHONY: fuzz fuzz-build fuzz-corpus testdata

testdata:
	tools/fetch-testdata.sh

fuzz-build:
	cmake --preset fuzz >/dev/null
	cmake --build $(FUZZ_BUILD) -j2 --target fuzzers

fuzz-corpus: fuzz-build
	tests/fuzz/make-corpus.sh $(FUZZ_BUILD)/tests/fuzz/dip-gen-seeds $(FUZZ_BUILD)/corpus

# Each target runs in turn; a crash stops that target only. libFuzzer writes the crashing input
# to tests/data/crashers/<format>/ (-artifact_prefix); the summary lists what was kept.
fuzz: fuzz-corpus
	@status=0; for f in $(FUZZ_TARGETS); do \
	    mkdir -p tests/data/crashers/$$f $(FUZZ_BUILD)/corpus/$$f; \
	    dict=""; [ -f tests/fuzz/$$f.dict ] && dict="-dict=tests/fuzz/$$f.dict"; \
	    echo "== fuzz-$$f for $(FUZZ_SECONDS) s"; \
	    ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 \
	    $(FUZZ_BUILD)/tests/fuzz/fuzz-$$f $$dict -max_total_time=$(FUZZ_SECONDS) \
	        -rss_limit_mb=$(FUZZ_RSS_MB) -timeout=30 -report_slow_units=1000 $(FUZZ_PAR) \
	        -print_final_stats=1 -artifact_prefix=tests/data/crashers/$$f/ \
	        $(FUZZ_BUILD)/corpus/$$f 2>&1 | tail -n 25 || status=1; \
	done; \
	echo "== kept crashers:"; ls -l tests/data/crashers/*/ 2>/dev/null | grep -v '^total' || true; \
	exit $$status
