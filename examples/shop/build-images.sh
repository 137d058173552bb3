#!/usr/bin/env bash
# Builds the shop's images with podman, from base images made locally (no registry is
# reachable from this project's machines), with the flags scripts/build-image.sh uses:
#
#   localhost/shop-recommendations:VERSION   Node.js + onnx-sidecar/client (from the sidecar image)
#   localhost/shop-search:VERSION            Python 3.11 + tritonclient[grpc]
#   localhost/shop-ads:VERSION               FROM scratch + one static Go binary
#   localhost/shop-storefront:VERSION        Node.js, no dependencies
#   MODEL_PREFIX{recommendations,search,ads}:1 and MODEL_PREFIXads:2
#                                            model images (scripts/build-model-image.sh):
#                                            each one model's directory, as the sidecar reads it
#
# usage: examples/shop/build-images.sh [VERSION]          (default 1.0.0)
# env:   SIDECAR_IMAGE  the onnx-sidecar image to take the client from (default
#                       localhost/onnx-sidecar:<package version>; built when missing)
#        MODEL_PREFIX   model image name prefix (default localhost/shop-model-)
#        PUSH_MODELS=1  push the model images too (scripts/build-model-image.sh --push); the
#                       pinned references (name@sha256:...) are printed for the annotations
#        SHOP_PYTHON    a Python 3.11 with pip (default python3), to install the search
#                       service's dependencies for the image's Python 3.11
# prints: one line per image, "image <ref> <size in MB>", and "model-image <name> <ref>"
# needs:  podman, runc, mmdebstrap, go, node 20
set -euo pipefail
shop=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$shop/../.." && pwd)
version=${1:-1.0.0}
sidecar_image=${SIDECAR_IMAGE:-localhost/onnx-sidecar:$(node -p "require('$repo/package.json').version")}
model_prefix=${MODEL_PREFIX:-localhost/shop-model-}
python=${SHOP_PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# runc: crun fails in this sandbox; explicit ulimits: the defaults cannot be set here.
build () { podman build --runtime runc --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 "$@" >&2; }
size_mb () { podman image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.1f", $1 / 1e6 }'; }

echo "build-images: base images" >&2
bash "$repo/scripts/build-base-image.sh"
bash "$shop/build-python-base.sh"
if ! podman image exists "$sidecar_image"; then
  echo "build-images: $sidecar_image is missing: scripts/build-image.sh" >&2
  bash "$repo/scripts/build-image.sh" "$sidecar_image" >/dev/null
fi

echo "build-images: ads binary (static, stdlib only)" >&2
mkdir -p "$work/bin"
(cd "$shop/ads" && CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' -o "$work/bin/ads" .)

echo "build-images: search dependencies (pip install --target, wheels for CPython 3.11 manylinux x86_64)" >&2
"$python" -m pip install --quiet --disable-pip-version-check --no-input --target "$work/site-packages" \
  --only-binary :all: --python-version 3.11 --implementation cp --platform manylinux2014_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 -r "$shop/search/requirements.txt"
rm -rf "$work/site-packages/bin"

build --build-arg "SIDECAR_IMAGE=$sidecar_image" -f "$shop/recommendations/Containerfile" -t "localhost/shop-recommendations:$version" "$shop"
build --build-context "deps=$work/site-packages" -f "$shop/search/Containerfile" -t "localhost/shop-search:$version" "$shop"
build --build-context "bin=$work/bin" -f "$shop/ads/Containerfile" -t "localhost/shop-ads:$version" "$shop"
build -f "$shop/storefront/Containerfile" -t "localhost/shop-storefront:$version" "$shop"
for svc in recommendations search ads storefront; do
  echo "image localhost/shop-$svc:$version $(size_mb "localhost/shop-$svc:$version")"
done

# Model images: one model each (the pod's sidecar serves only its own model).
model_image () { # <name> <tag> <staged repository dir>
  local args=("$3" "$model_prefix$1:$2")
  [ "${PUSH_MODELS:-}" = 1 ] && args+=(--push)
  echo "model-image $1 $(bash "$repo/scripts/build-model-image.sh" "${args[@]}")"
}
for name in recommendations search ads; do
  mkdir -p "$work/models-$name"
  cp -r "$shop/models/$name" "$work/models-$name/$name"
  model_image "$name" 1 "$work/models-$name"
done
# ads v2: the same config.yaml (its min-max bounds are shared by every version), version 2 only.
mkdir -p "$work/models-ads-2/ads"
cp "$shop/models/ads/config.yaml" "$shop/models/ads/labels.txt" "$work/models-ads-2/ads/"
cp -r "$shop/models-v2/ads/2" "$work/models-ads-2/ads/2"
model_image ads 2 "$work/models-ads-2"
