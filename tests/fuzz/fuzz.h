/* SPDX-License-Identifier: MIT */
/* Shared by the libFuzzer targets and the crasher replay driver: one fuzz iteration probes and
 * decodes the input with dip's default limits and checks the results are coherent. */
#ifndef DIP_FUZZ_H
#define DIP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "dip/codec.h"

/* libFuzzer's entry point, defined once per target (fuzz-<format>.c). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Probes and decodes `data` when it sniffs as `want` (any format for DIP_FORMAT_UNKNOWN); frees
 * everything; aborts when the results break the codec contract (an error without a message, an
 * image with an error, a decode that succeeds where the probe fails, sizes that disagree). */
int dip_fuzz_one(const uint8_t *data, size_t size, dip_format want);

#endif
