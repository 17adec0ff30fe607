#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs a browser test in a network namespace of its own, with only loopback up: the dip servers
# it starts, node and chromium all talk over that loopback, and chromium does not see the
# bridges and addresses the fake-host mpi tests create beside it (it failed requests with
# net::ERR_NETWORK_CHANGED then, and e2e/a11y timed out). Needs root (unshare); without it, or
# where namespaces cannot be made, the command runs as it is.
if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then
    exec unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh "$@"
fi
exec "$@"
