/* SPDX-License-Identifier: MIT */
/* libFuzzer target for dip's tiff decoder: inputs that sniff as tiff go through dip_codec_probe and
 * dip_codec_decode with default limits (fuzz-common.c). Seeds: make-corpus.sh; dictionary:
 * tiff.dict where present. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return dip_fuzz_one(data, size, DIP_FORMAT_TIFF);
}
