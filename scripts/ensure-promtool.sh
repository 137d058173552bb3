#!/usr/bin/env bash
# Prints the path of a promtool binary, building it from the Go module proxy the first time.
# promtool checks and unit-tests the PrometheusRule in deploy/monitoring (promtool check rules,
# promtool test rules). It is built from the same github.com/prometheus/prometheus version
# (and the same go.mod / go.sum) as the e2e's Prometheus server (e2e/prometheus), with the same
# GOPATH, GOMODCACHE and GOCACHE as e2e/build-node.sh, so the two share the module and build
# caches. The binary is cached outside the repository; PROMTOOL=/path overrides all.
#
#   bash scripts/ensure-promtool.sh      # prints the binary's path on its last line
set -euo pipefail
if [ -n "${PROMTOOL:-}" ]; then echo "$PROMTOOL"; exit 0; fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prom_module="$here/../e2e/prometheus"
version="$(awk '$1=="require" && $2=="github.com/prometheus/prometheus"{print $3} $1=="github.com/prometheus/prometheus"{print $2}' "$prom_module/go.mod" | head -n 1)"
[ -n "$version" ] || { echo "ensure-promtool: no github.com/prometheus/prometheus version in $prom_module/go.mod" >&2; exit 1; }
cache="${XDG_CACHE_HOME:-$HOME/.cache}/onnx-sidecar"
bin="$cache/bin"
# Service discovery is left out (build tag remove_all_sd): rule checks and rule tests need none.
tags=remove_all_sd
stamp="$(cat "$prom_module/go.mod" "$prom_module/go.sum" | sha256sum | cut -d' ' -f1)+$tags"
if [ -x "$bin/promtool" ] && [ "$(cat "$bin/promtool.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$bin/promtool"; exit 0
fi
command -v go >/dev/null 2>&1 || { echo "ensure-promtool: Go is needed to build promtool (prometheus $version)" >&2; exit 1; }

export GOPATH="${GOPATH:-$cache/gopath}"
export GOMODCACHE="${GOMODCACHE:-$GOPATH/pkg/mod}"
export GOCACHE="${GOCACHE:-$cache/gocache}"
export GOFLAGS="-mod=mod -buildvcs=false"

# Build in a copy of the e2e module: -mod=mod may add go.sum lines for promtool's own
# packages, and the repository's go.sum (part of build-node.sh's stamp) must not change.
work="$cache/promtool-module"
rm -rf "$work"
mkdir -p "$work" "$bin"
cp "$prom_module/go.mod" "$prom_module/go.sum" "$work/"
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/prometheus/prometheus/cmd/promtool"\n' >"$work/tools.go"
echo "ensure-promtool: building promtool (github.com/prometheus/prometheus $version) into $bin (one time)" >&2
start=$SECONDS
CGO_ENABLED=0 go -C "$work" build -trimpath -tags "$tags" -ldflags "-s -w" \
  -o "$bin/promtool.tmp" github.com/prometheus/prometheus/cmd/promtool >&2
mv "$bin/promtool.tmp" "$bin/promtool"
echo "$stamp" >"$bin/promtool.stamp"
echo "ensure-promtool: built in $((SECONDS - start))s" >&2
echo "$bin/promtool"
