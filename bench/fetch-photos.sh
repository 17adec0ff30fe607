#!/bin/sh
# SPDX-License-Identifier: MIT
# The real photos of `make bench`: downloads two Debian wallpaper packages with `apt-get download`
# into a git-ignored cache ($DIP_BENCH_CACHE, default .cache/bench at the repository root), keeps
# one photo of each, and writes them scaled to 4000x3000 (12 MP) as RGB and gray PNGs:
#   kleiber.png, kleiber-gray.png  a nuthatch on tree bark (lomiri-wallpapers-20.04, 6028x3391)
#   dune.png, dune-gray.png        dune grass against the sea (mate-backgrounds, 1680x1050)
# Nothing it fetches is committed. Idempotent: files already made are kept.
# Usage: bench/fetch-photos.sh   (prints the cache folder)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${DIP_BENCH_CACHE:-$root/.cache/bench}
mkdir -p "$cache/debs"

# name:package:path inside the package
photos="kleiber:lomiri-wallpapers-20.04:./usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg
dune:mate-backgrounds:./usr/share/backgrounds/mate/nature/Dune.jpg"

echo "$photos" | while IFS=: read -r name pkg path; do
    [ -f "$cache/$name.png" ] && [ -f "$cache/$name-gray.png" ] && continue
    deb=$(ls "$cache/debs/${pkg}"_*.deb 2>/dev/null | head -n 1 || true)
    if [ -z "$deb" ]; then
        if ! (cd "$cache/debs" && apt-get -q download "$pkg" >/dev/null 2>&1); then
            apt-get -q update >/dev/null 2>&1 || true
            (cd "$cache/debs" && apt-get -q download "$pkg" >/dev/null 2>&1) ||
                { echo "fetch-photos: cannot download $pkg" >&2; exit 1; }
        fi
        deb=$(ls "$cache/debs/${pkg}"_*.deb | head -n 1)
    fi
    rm -rf "$cache/tmp"
    mkdir -p "$cache/tmp"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$cache/tmp" "$path"
    /usr/bin/python3 "$root/bench/make_photo.py" "$cache/tmp/$path" "$cache/$name.png" \
        "$cache/$name-gray.png"
    rm -rf "$cache/tmp" "$deb"
done
echo "$cache"
