#!/usr/bin/env bash
# Builds a model image: an OCI image whose files are a model repository as `serve` reads it
# (<model>/config.yaml, <model>/<version>/model.onnx, ...), for pods annotated
# onnx-sidecar.io/model-image (a Kubernetes image volume mounts it read-only at /models).
# The Containerfile is two lines, made on the fly: FROM scratch, COPY . /. The build uses a
# fixed timestamp, so the same files give the same image.
#
# usage: scripts/build-model-image.sh <repo-dir> <image-ref> [--push]
#   <image-ref>  where the image goes, with a tag and no digest, e.g. 127.0.0.1:5000/models/iris:v1
#   --push       push it too (--tls-verify=false only for a registry on 127.0.0.1 or localhost)
# prints: <image-ref>, or after --push the pinned reference <name>@sha256:<digest> to annotate pods with
# needs: podman, runc
set -euo pipefail

usage () { echo "usage: $0 <repo-dir> <image-ref> [--push]" >&2; exit 2; }
die () { echo "build-model-image: $*" >&2; exit 1; }

[ $# -eq 2 ] || [ $# -eq 3 ] || usage
dir=$1
ref=$2
push=false
if [ $# -eq 3 ]; then
  [ "$3" = --push ] || usage
  push=true
fi

[ -d "$dir" ] || die "$dir is not a directory"
case "$ref" in
  *@*) die "$ref: name the image with a tag (name:tag), not a digest; the digest is printed after --push" ;;
  ''|-*) usage ;;
esac
# A model repository: at least one <model>/<version>/model.onnx.
compgen -G "$dir/*/[0-9]*/model.onnx" >/dev/null || die "$dir holds no <model>/<version>/model.onnx: not a model repository"
# The sidecar runs as a non-root user; the image keeps the files' modes.
unreadable=$(find "$dir" \( -type f ! -perm -o=r \) -o \( -type d ! -perm -o=rx \) | head -n 3)
[ -z "$unreadable" ] || die "not readable by every user, so not by the sidecar (chmod -R a+rX $dir): $(echo "$unreadable" | tr '\n' ' ')"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'FROM scratch\nCOPY . /\n' >"$work/Containerfile"

# runc: crun fails in this sandbox; explicit ulimits: the defaults cannot be set here
# (the flags scripts/build-image.sh uses). --timestamp 0: reproducible layers and config.
podman build --runtime runc --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 \
  --timestamp 0 --file "$work/Containerfile" --tag "$ref" "$dir" >&2

if ! $push; then
  echo "$ref"
  exit 0
fi

# The registry is the first path element when it looks like a host (as the reference grammar reads it).
first=${ref%%/*}
host=
if [ "$first" != "$ref" ] && { [[ $first == *[.:]* ]] || [ "$first" = localhost ]; }; then
  host=${first%:*}
  [[ $first == \[*\]* ]] && host=${first%%]*}]
fi
tls=()
case "$host" in
  127.0.0.1|localhost) tls=(--tls-verify=false) ;; # a local test registry on plain HTTP
esac
podman push "${tls[@]}" --digestfile "$work/digest" "$ref" >&2
last=${ref##*/}
name=$ref
[[ $last == *:* ]] && name=${ref%:*} # drop the tag; a registry's :port is before the last /
echo "$name@$(cat "$work/digest")"
