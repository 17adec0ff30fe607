/* SPDX-License-Identifier: MIT */
/* Error codes and error detail for every dip layer. One X-macro generates the enum, the names,
 * the messages, the HTTP status and the CLI exit code, so the four never disagree. Detail text is
 * only attached at trust boundaries (decoders, parsers, HTTP bodies) into a caller-owned
 * struct dip_err; there is no global error buffer. */
#ifndef DIP_ERROR_H
#define DIP_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* XX(name, http status, cli exit code, message) */
#define DIP_ERRNO_MAP(XX)                                                                          \
    XX(EINVAL, 400, 2, "invalid argument")                                                         \
    XX(ELIMIT, 413, 3, "input exceeds a configured limit")                                         \
    XX(ECORRUPT, 422, 4, "corrupt or truncated image data")                                        \
    XX(EFORMAT, 415, 4, "unsupported or unrecognised image format")                                \
    XX(ENOMEM, 503, 5, "out of memory")                                                            \
    XX(EIO, 500, 6, "input/output error")                                                          \
    XX(ENOTFOUND, 404, 2, "not found")                                                             \
    XX(EPEER, 502, 7, "worker failed or became unreachable")                                       \
    XX(ECANCELED, 409, 8, "cancelled")                                                             \
    XX(EAUTH, 401, 9, "authentication required or invalid token")                                  \
    XX(EBUSY, 429, 10, "too many requests or jobs; retry later")                                   \
    XX(EINTERNAL, 500, 11, "internal error")                                                       \
    XX(ENOSPC, 507, 12, "insufficient storage")                                                    \
    XX(ETOOBIG, 422, 3, "the result would exceed a configured limit")                              \
    XX(EINTEGRITY, 500, 13, "data failed authentication: wrong key or altered")

enum dip_errno {
    DIP_OK = 0,
#define DIP__ERR_ENUM(name, http, exitc, msg) DIP_##name,
    DIP_ERRNO_MAP(DIP__ERR_ENUM)
#undef DIP__ERR_ENUM
        DIP_ERRNO_MAX
};

/** Detail for one failure. Caller-owned; zero-initialise (or dip_err_clear()) before use.
 * `code` is 0 until a setter runs. `msg` is a NUL-terminated human sentence naming what is wrong
 * (file, field, limit). */
struct dip_err {
    int code;
    char msg[512];
};

/** Static message for `code` ("invalid argument"). Never NULL; unknown codes give "unknown error".
 */
const char *dip_strerror(int code);
/** Symbolic name without prefix ("ELIMIT"). Never NULL. */
const char *dip_err_name(int code);
/** HTTP status for `code` (200 for 0). */
int dip_err_http_status(int code);
/** CLI exit status for `code` (0 for 0). */
int dip_err_exit_code(int code);

/** Records `code` and a printf-style message into `err` (which may be NULL) and returns `code`,
 * so callers write `return dip_err_set(err, DIP_ELIMIT, "png: width %d > limit %d", w, max);`.
 * A message longer than the buffer is truncated. */
int dip_err_set(struct dip_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Prepends a printf-style prefix to the message in `err` (e.g. the file name). No-op on NULL. */
void dip_err_prefix(struct dip_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Resets `err` to no error. */
void dip_err_clear(struct dip_err *err);
/** The best text for a failure: err->msg when set, else dip_strerror(code). */
const char *dip_err_text(const struct dip_err *err, int code);

#ifdef __cplusplus
}
#endif
#endif
