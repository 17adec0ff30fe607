/* SPDX-License-Identifier: MIT */
/* main() for C test executables: `exe NAME` runs one registered test, `exe` runs all of them in
 * order and `exe --list` prints their names. CTest uses the first form, one process per test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#define MAX_TESTS 512

static struct {
    const char *name;
    dip_test_fn fn;
} tests[MAX_TESTS];
static int ntests;

void dip_test_register(const char *name, dip_test_fn fn)
{
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "too many tests\n");
        abort();
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

const char *dip_test_tmpdir(void)
{
    static char dir[256];

    if (dir[0] == '\0') {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/dip-test-XXXXXX", base ? base : "/tmp");
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            abort();
        }
    }
    return dir;
}

int main(int argc, char **argv)
{
    int ran = 0;

    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < ntests; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    for (int i = 0; i < ntests; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
            continue;
        tests[i].fn();
        ran++;
    }
    if (argc > 1 && ran == 0) {
        fprintf(stderr, "no test named %s\n", argv[1]);
        return 1;
    }
    printf("%d passed, 0 failed\n", ran);
    return 0;
}
