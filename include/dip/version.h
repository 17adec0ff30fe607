/* SPDX-License-Identifier: MIT */
/* dip's version, on its own so that any layer (the S3 client's User-Agent) may name it without
 * the whole API of dip/dip.h. */
#ifndef DIP_VERSION_H
#define DIP_VERSION_H

#define DIP_VERSION "0.1.0"

#endif
