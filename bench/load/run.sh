#!/bin/sh
# SPDX-License-Identifier: MIT
# Load benchmark of `dip serve`: POST /api/v1/process with a small JPEG at 1, 8 and 64
# connections; prints requests/s and p50/p99/max latency per row.
#   bench/load/run.sh [path/to/dip] [seconds] [pipeline]
set -eu
DIP=${1:-build/dip}
SECS=${2:-10}
PIPE=${3:-invert}
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$TMP"' EXIT INT TERM

cc -O2 -pthread -o "$TMP/dip-load" "$HERE/dip-load.c"
/usr/bin/python3 - "$TMP/small.jpg" <<'PY'
import sys, cv2, numpy as np
rng = np.random.RandomState(0)
img = cv2.GaussianBlur(rng.randint(0, 256, (240, 320, 3), dtype=np.uint8), (9, 9), 3)
cv2.imwrite(sys.argv[1], img, [cv2.IMWRITE_JPEG_QUALITY, 85])
PY
"$DIP" serve --listen 127.0.0.1:0 --data "$TMP/var" --quiet > "$TMP/out" 2>&1 &
SERVER=$!
for i in $(seq 50); do grep -q '://' "$TMP/out" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's#.*://[^:]*:\([0-9]*\)/.*#\1#p' "$TMP/out" | head -1)
URL="/api/v1/process?pipeline=$(/usr/bin/python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1]))' "$PIPE")&format=jpeg&quality=85"
echo "dip serve load: POST $URL, $(stat -c %s "$TMP/small.jpg")-byte 320x240 JPEG, ${SECS}s per row, $(nproc) cores"
printf "%5s %10s %9s %9s %9s %7s %7s\n" conns req/s p50_ms p99_ms max_ms non200 errors
for c in 1 8 64; do
  "$TMP/dip-load" "$PORT" "$URL" "$TMP/small.jpg" "$c" "$SECS"
done
