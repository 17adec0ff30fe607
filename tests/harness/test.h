/* SPDX-License-Identifier: MIT */
/* A small test harness in the manner of libuv's task.h: TEST(name) bodies register themselves,
 * CMake finds them by scanning the source and runs each as its own process
 * (`test-foo name`). ASSERT_* print both sides and the location, then abort the process. */
#ifndef DIP_TEST_H
#define DIP_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when built with AddressSanitizer: a sweep whose cases only repeat the same code paths may run
 * a sample of them there, since the -Werror pass runs them all (say which in the test). */
#if defined(__SANITIZE_ADDRESS__)
#define DIP_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DIP_TEST_SANITIZED 1
#endif
#endif
#ifndef DIP_TEST_SANITIZED
#define DIP_TEST_SANITIZED 0
#endif

typedef void (*dip_test_fn)(void);
void dip_test_register(const char *name, dip_test_fn fn);
/* Path helpers: DIP_SOURCE_DIR "/" rel, into a static buffer per call site is not thread-safe:
 * use from the test thread only. */
const char *dip_test_tmpdir(void);

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void register_##name(void)                                 \
    {                                                                                              \
        dip_test_register(#name, test_##name);                                                     \
    }                                                                                              \
    static void test_##name(void)

#define DIP_TEST_FAIL(...)                                                                         \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        abort();                                                                                   \
    } while (0)

#define ASSERT(x)                                                                                  \
    do {                                                                                           \
        if (!(x))                                                                                  \
            DIP_TEST_FAIL("assertion failed: %s", #x);                                             \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                                        \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            DIP_TEST_FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);                               \
    } while (0)
#define ASSERT_NE_INT(a, b)                                                                        \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ == b_)                                                                              \
            DIP_TEST_FAIL("%s != %s: both %lld", #a, #b, a_);                                      \
    } while (0)
#define ASSERT_LE_INT(a, b)                                                                        \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (!(a_ <= b_))                                                                           \
            DIP_TEST_FAIL("%s <= %s: %lld > %lld", #a, #b, a_, b_);                                \
    } while (0)
#define ASSERT_EQ_STR(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (strcmp(a_, b_) != 0)                                                                   \
            DIP_TEST_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, a_, b_);                           \
    } while (0)
#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (strstr(h_, n_) == NULL)                                                                \
            DIP_TEST_FAIL("\"%s\" does not contain \"%s\"", h_, n_);                               \
    } while (0)
/* An expression returning a dip status must be 0; prints the name on failure. */
#define ASSERT_OK(x)                                                                               \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_ != 0)                                                                              \
            DIP_TEST_FAIL("%s returned %d (%s)", #x, rc_, dip_err_name(rc_));                      \
    } while (0)

#endif
