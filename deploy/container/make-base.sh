#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes the base image for deploy/container/Containerfile locally, for machines that reach
# Debian's archive but no image registry: `debootstrap --variant=minbase bookworm` from the
# mirror apt already uses, the same apt sources as debian:bookworm-slim (bookworm,
# bookworm-updates, bookworm-security), apt caches removed, then `podman import`.
# The image stays in podman's store and is the cache: a second run returns at once.
# Usage: deploy/container/make-base.sh [IMAGE]     (default localhost/dip-base:bookworm)
#   DEBIAN_MIRROR   the archive (default: the first bookworm URI in apt's sources)
#   DIP_BASE_REBUILD=1  make it again even when the image exists
set -euo pipefail
image=${1:-localhost/dip-base:bookworm}
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}

if [ "${DIP_BASE_REBUILD:-0}" != 1 ] && podman image exists "$image"; then
  exit 0
fi
for t in podman debootstrap; do
  command -v $t >/dev/null || { echo "make-base: $t is missing (tools/install-deps.sh test)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "make-base: debootstrap needs root" >&2; exit 1; }

mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  # deb822 (URIs: ...) or one-line (deb URI bookworm main) sources; the first plain Debian one.
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' |
           grep -E "/debian/?$" | head -n1 || true)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' \
                               /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi
security=${DEBIAN_SECURITY_MIRROR:-${mirror%/debian}/debian-security}

root=$(mktemp -d /var/tmp/dip-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "make-base: debootstrap --variant=minbase bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
  { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# What debian:bookworm-slim leaves out, now and in every package installed later (the same
# dpkg excludes): documentation, man and info pages, translations; then apt's caches and lists.
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EXCLUDES'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EXCLUDES
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/groff/* "$root"/usr/share/info/* \
       "$root"/usr/share/lintian/* "$root"/usr/share/linda/* "$root"/usr/share/locale/* \
       "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/tmp/*
tar --numeric-owner -C "$root" -c . | podman import --change 'CMD ["bash"]' - "$image" >/dev/null
echo "make-base: $image ($(podman image inspect --format '{{.Size}}' "$image") bytes)"
