/* SPDX-License-Identifier: MIT */
/* 8-bit images as NumPy .npy files (version 1, C order, shape (h, w) or (h, w, c), c 1-4): the
 * format the Python tests hand to and take from the helper programs (golden/dip-raw,
 * conformance/dip-decode), so that numpy reads them with no conversion. */
#ifndef DIP_TEST_NPY_H
#define DIP_TEST_NPY_H

#include "dip/dip.h"

/* Reads path into a new image (*out). Returns 0, or 1 when it is not such a file. */
int npy_read(const char *path, dip_image **out);
/* Writes img to path. Returns 0, or 1 on an I/O error. */
int npy_write(const char *path, const dip_image *img);

#endif
