#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make run`: dip's main job on the embedded default. Once the HTTP service is built, it starts
# `dip serve` (local executor, SQLite and blobs under ./var) and prints the page's address;
# otherwise it processes the sample images with a demo pipeline and says where the results are.
set -euo pipefail
dip=${1:-build/dip}
if "$dip" serve --help >/dev/null 2>&1; then
  exec "$dip" serve --listen "${DIP_LISTEN:-127.0.0.1:8080}" --data "${DIP_DATA:-var}"
fi
mkdir -p var/samples var/out
/usr/bin/python3 tools/make-samples.py var/samples
pipeline='gaussian(size=5) | canny(low=100, high=200)'
"$dip" ops >/dev/null
if ! "$dip" ops | grep -q '^canny'; then pipeline='invert'; fi
"$dip" process -p "$pipeline" -o var/out var/samples/*
echo "Results of '$pipeline' are in $(pwd)/var/out"
