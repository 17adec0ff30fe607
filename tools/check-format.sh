#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# clang-format (v14, .clang-format = STYLE.md) over every C file git tracks.
#   tools/check-format.sh          check: list the files that differ, exit 1 when one does
#   tools/check-format.sh --fix    reformat them in place
set -euo pipefail
cd "$(dirname "$0")/.."
CF=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
if [ -z "$CF" ]; then
    echo "check-format: clang-format not found (apt-get install clang-format)" >&2
    exit 2
fi
mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v '^tests/data/')
if [ "${1:-}" = "--fix" ]; then
    "$CF" -i "${files[@]}"
    echo "format: ${#files[@]} files formatted with $("$CF" --version | head -1)"
    exit 0
fi
bad=()
for f in "${files[@]}"; do
    "$CF" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
    printf '  %s\n' "${bad[@]}"
    echo "check-format: ${#bad[@]} of ${#files[@]} files differ from .clang-format (make format)"
    exit 1
fi
echo "check-format: ${#files[@]} files match .clang-format"
