#!/usr/bin/env bash
# Creates the Dockerfile's base image locally, because no container registry is reachable
# from this project's machines: a minimal Debian bookworm (mmdebstrap or debootstrap, from
# Debian's packages) with this machine's Node.js 20 and npm laid out as in the official node:20-bookworm-slim
# image (/usr/local/bin/node, /usr/local/lib/node_modules/npm), tagged with exactly the
# name the Dockerfile's FROM uses. Skips the work when that tag already exists.
#
# usage: scripts/build-base-image.sh [--force]
# env:   PODMAN (default podman), BASE_IMAGE (default: read from the Dockerfile's FROM),
#        DEBIAN_MIRROR (default http://deb.debian.org/debian)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
podman=${PODMAN:-podman}
base=${BASE_IMAGE:-$(sed -nE 's/^ARG BASE_IMAGE=(.*)$/\1/p' "$here/Dockerfile" | head -n 1)}
[ -n "$base" ] || { echo "build-base-image: no 'ARG BASE_IMAGE=' line in the Dockerfile" >&2; exit 1; }
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "${1:-}" != "--force" ] && "$podman" image exists "$base"; then
  echo "build-base-image: $base exists, nothing to do" >&2
  exit 0
fi

node_bin=$(command -v node)
node_bin=$(readlink -f "$node_bin")
major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
[ "$major" = 20 ] || { echo "build-base-image: need Node.js 20 on this machine, found $("$node_bin" --version)" >&2; exit 1; }
npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
[ -f "$npm_dir/package.json" ] || { echo "build-base-image: npm not found" >&2; exit 1; }
if command -v mmdebstrap >/dev/null; then
  strap=mmdebstrap # apt-based and parallel: about 30 s here, where debootstrap takes 5 minutes
elif command -v debootstrap >/dev/null; then
  strap=debootstrap
else
  echo "build-base-image: needs mmdebstrap or debootstrap (apt-get install -y mmdebstrap)" >&2; exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
echo "build-base-image: $strap bookworm (minbase) from $mirror" >&2
mkdir -p "$root"
"$strap" --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >"$work/strap.log" 2>&1 || {
  tail -n 30 "$work/strap.log" >&2; exit 1; }

# Node.js and npm where the official image puts them.
install -D -m 0755 "$node_bin" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
chroot "$root" /usr/local/bin/node --version >/dev/null

# This machine's trust store, so that `npm ci` in the build stage reaches the registry
# through the same TLS-inspecting egress the host uses (its CA is in the host's bundle,
# not in Debian's). Harmless elsewhere: it is Debian's bundle plus local additions.
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
ca_env=()
if [ -f "$ca" ]; then
  install -m 0644 "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
  ca_env=(--change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
fi

# What the slim image leaves out: package lists, docs, man pages, caches.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log \
  "$root"/tmp/* "$root"/root/.npm

version=$("$node_bin" --version)
echo "build-base-image: importing as $base (node $version)" >&2
tar --numeric-owner -C "$root" -cf - . | "$podman" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${version#v}" \
  --change 'CMD ["node"]' "${ca_env[@]}" \
  --message "local stand-in for $base: debootstrap bookworm + node $version" \
  --quiet - "$base" >/dev/null
"$podman" image inspect --format '{{.Id}} {{.Size}}' "$base" >&2
