/* SPDX-License-Identifier: MIT */
/* libFuzzer target for dip's bmp decoder: inputs that sniff as bmp go through dip_codec_probe and
 * dip_codec_decode with default limits (fuzz-common.c). Seeds: make-corpus.sh; dictionary:
 * bmp.dict where present. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return dip_fuzz_one(data, size, DIP_FORMAT_BMP);
}
