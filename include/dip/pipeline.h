/* SPDX-License-Identifier: MIT */
/* Pipelines: `gaussian(size=5) | canny(low=100, high=200)`, the one syntax shared by the CLI,
 * the HTTP API and the web page. Parsing checks every name and parameter against the operation
 * table; errors name the position, the unknown operation (with the nearest names) or the parameter
 * and its range. The empty pipeline is valid (format conversion only). */
#ifndef DIP_PIPELINE_H
#define DIP_PIPELINE_H

#include <stddef.h>

#include "error.h"
#include "op.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dip_pipeline dip_pipeline;

/** Parses `text`. Grammar: pipeline = [step *("|" step)]; step = name ["(" [arg *("," arg)] ")"];
 * arg = name "=" value | value (positional, in table order). Whitespace is free. Returns 0,
 * DIP_EINVAL (err: "pipeline: at 12: unknown operation 'gausian' (did you mean gaussian?)"),
 * DIP_ENOMEM. The caller frees *out with dip_pipeline_free(). */
int dip_pipeline_parse(const char *text, dip_pipeline **out, struct dip_err *err);
/** NULL is a no-op. */
void dip_pipeline_free(dip_pipeline *p);
/** Number of steps. */
size_t dip_pipeline_length(const dip_pipeline *p);
/** The operation of step i. */
const struct dip_op *dip_pipeline_op(const dip_pipeline *p, size_t i);
/** Args of step i (op->args_size bytes, params set and prepare() not yet applied). Valid until
 * dip_pipeline_free(). */
const void *dip_pipeline_args(const dip_pipeline *p, size_t i);
/** Canonical text with every parameter spelled out: "gaussian(size=5, sigma=0) | invert".
 * With `versions`, each name carries its version ("gaussian@1(...)"), for cache keys.
 * Returns the length it needed (like snprintf). */
size_t dip_pipeline_format(const dip_pipeline *p, int versions, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
