#!/usr/bin/env bash
# Builds the onnx-sidecar image with podman as this project's machines can run it, after
# making the Dockerfile's base image locally (scripts/build-base-image.sh; no registry is
# reachable here). Layers are cached, so a second build with unchanged sources is quick.
#
# usage: scripts/build-image.sh [TAG]     (default localhost/onnx-sidecar:<package version>)
# needs: apt-get install -y podman runc mmdebstrap
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
version=$(node -p "require('$here/package.json').version")
tag=${1:-localhost/onnx-sidecar:$version}
bash "$here/scripts/build-base-image.sh"
# runc: crun fails in this sandbox; explicit ulimits: the defaults cannot be set here;
# host network: npm ci in the build stage reaches the registry as the host does.
podman build --runtime runc --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 --network host \
  --build-arg "VERSION=$version" --build-arg "REVISION=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --tag "$tag" "$here" >&2
echo "$tag"
