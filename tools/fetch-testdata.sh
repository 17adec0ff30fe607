#!/bin/sh
# SPDX-License-Identifier: MIT
# Fetches the third-party test images that the conformance suite compares against (PngSuite and
# Go's image testdata, golang.org/x/image testdata, gdk-pixbuf's installed tests, the imaging EXIF
# orientation set) from Debian's archive with `apt-get download`, and unpacks them with dpkg-deb
# into $DIP_TEST_CACHE (default: .cache/ at the repository root, git-ignored). Nothing it fetches
# is committed. Idempotent: a package whose unpacked folder carries a .complete stamp is skipped,
# so a second run costs a few stat calls. Exit status 0 when every package is present; set
# DIP_FETCH_OPTIONAL=1 to turn a failed download into a warning (the tests then skip).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${DIP_TEST_CACHE:-$root/.cache}
# Package, and the paths inside it worth unpacking (a tar pattern; '*' for all of it).
pkgs="golang-1.19-src:*/src/image/*
golang-golang-x-image-dev:*/testdata/*
gdk-pixbuf-tests:*/installed-tests/gdk-pixbuf/*
golang-github-disintegration-imaging-dev:*/testdata/*"

mkdir -p "$cache/debs" "$cache/pkgs"
failed=""

download() { # $1 package: leaves its .deb in $cache/debs
    (cd "$cache/debs" && apt-get -q download "$1" >/dev/null 2>&1) && return 0
    echo "fetch-testdata: apt-get download $1 failed; running apt-get update and retrying" >&2
    apt-get -q update >/dev/null 2>&1 || true
    (cd "$cache/debs" && apt-get -q download "$1" >/dev/null 2>&1)
}

echo "$pkgs" | while IFS=: read -r pkg pattern; do
    dest="$cache/pkgs/$pkg"
    [ -f "$dest/.complete" ] && continue
    deb=$(ls "$cache/debs/${pkg}"_*.deb 2>/dev/null | head -n 1 || true)
    if [ -z "$deb" ]; then
        if ! download "$pkg"; then
            echo "fetch-testdata: cannot download $pkg" >&2
            echo "$pkg" >>"$cache/.failed"
            continue
        fi
        deb=$(ls "$cache/debs/${pkg}"_*.deb | head -n 1)
    fi
    rm -rf "$dest.tmp" "$dest"
    mkdir -p "$dest.tmp"
    # dpkg-deb unpacks; the pattern keeps only the test images of large source packages.
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dest.tmp" --wildcards "$pattern"
    echo "$(basename "$deb")" >"$dest.tmp/.complete"
    mv "$dest.tmp" "$dest"
    rm -f "$deb"
    echo "fetch-testdata: unpacked $(basename "$deb") into $dest"
done

if [ -f "$cache/.failed" ]; then
    failed=$(tr '\n' ' ' <"$cache/.failed")
    rm -f "$cache/.failed"
    if [ "${DIP_FETCH_OPTIONAL:-0}" = 1 ]; then
        echo "fetch-testdata: warning: not fetched: $failed(conformance tests will skip)" >&2
        exit 0
    fi
    echo "fetch-testdata: error: not fetched: $failed" >&2
    exit 1
fi
exit 0
