/* SPDX-License-Identifier: MIT */
/* libFuzzer target for dip's webp decoder: inputs that sniff as webp go through dip_codec_probe and
 * dip_codec_decode with default limits (fuzz-common.c). Seeds: make-corpus.sh; dictionary:
 * webp.dict where present. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return dip_fuzz_one(data, size, DIP_FORMAT_WEBP);
}
