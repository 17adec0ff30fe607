#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the npm packages of every test folder with a package.json (tests/*/package.json) whose
# node_modules is missing: all folders at once (the installs wait on the network, not the CPU),
# each from its lockfile (npm ci), taking what npm's cache already holds without asking the
# registry again (--prefer-offline). Called by `make test-deps`; the tests themselves never
# install anything.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v npm >/dev/null 2>&1 || { echo "npm-deps: no npm on PATH (tools/install-deps.sh)"; exit 0; }
pids=() dirs=()
for pj in tests/*/package.json; do
    d=$(dirname "$pj")
    [ -d "$d/node_modules" ] && continue
    (
        cd "$d" && start=$SECONDS &&
        { npm ci --no-audit --no-fund --prefer-offline >npm-install.log 2>&1 ||
          npm install --no-audit --no-fund --prefer-offline >>npm-install.log 2>&1; } &&
        echo "npm-deps: $d in $((SECONDS - start)) s" && rm -f npm-install.log
    ) &
    pids+=($!) dirs+=("$d")
done
rc=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        echo "npm-deps: ${dirs[$i]} failed; see ${dirs[$i]}/npm-install.log" >&2
        rc=1
    fi
done
exit $rc
