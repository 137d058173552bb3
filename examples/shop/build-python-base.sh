#!/usr/bin/env bash
# The search service's base image, made locally because no registry is reachable from
# this project's machines (the same approach as scripts/build-base-image.sh): a minimal
# Debian bookworm (mmdebstrap, minbase) with Debian's python3 (3.11), tagged with the
# name search/Containerfile's FROM uses, docker.io/library/python:3.11-slim-bookworm.
# Elsewhere, pull the real image instead. Skips the work when the tag already exists.
#
# usage: examples/shop/build-python-base.sh [--force]
# env:   PODMAN (default podman), DEBIAN_MIRROR (default http://deb.debian.org/debian)
set -euo pipefail
podman=${PODMAN:-podman}
base=docker.io/library/python:3.11-slim-bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "${1:-}" != "--force" ] && "$podman" image exists "$base"; then
  echo "build-python-base: $base exists, nothing to do" >&2
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "build-python-base: needs mmdebstrap (apt-get install -y mmdebstrap)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"
echo "build-python-base: mmdebstrap bookworm (minbase + python3) from $mirror" >&2
# The merged-usr hook instead of the usrmerge package, which pulls in perl (47 MB).
mmdebstrap --variant=minbase --include=python3 --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  bookworm "$root" "$mirror" >"$work/strap.log" 2>&1 || {
  tail -n 30 "$work/strap.log" >&2; exit 1; }
chroot "$root" python3 -c 'import json, http.server, ssl' >/dev/null
# What a slim image leaves out: package lists, docs, man pages, message catalogues, caches.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
  "$root"/var/log/*.log "$root"/tmp/*
version=$(chroot "$root" python3 -c 'import platform; print(platform.python_version())')
tar --numeric-owner -C "$root" -cf - . | "$podman" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV PYTHON_VERSION=$version" \
  --change 'CMD ["python3"]' \
  --message "local stand-in for $base: mmdebstrap bookworm + Debian python3 $version" \
  --quiet - "$base" >/dev/null
"$podman" image inspect --format '{{.Id}} {{.Size}}' "$base" >&2
