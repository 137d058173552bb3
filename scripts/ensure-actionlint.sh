#!/usr/bin/env bash
# Prints the path of an actionlint v1.7.12 binary (the GitHub Actions workflow linter),
# building it from the Go module proxy with `go install` the first time. The binary is
# cached outside the repository (XDG cache), so CI builds it once per machine.
# An `actionlint` already on PATH is used when it is exactly that version; ACTIONLINT=/path
# overrides all. actionlint runs shellcheck on `run:` scripts when shellcheck is on PATH.
set -euo pipefail
want=v1.7.12
if [ -n "${ACTIONLINT:-}" ]; then echo "$ACTIONLINT"; exit 0; fi
bin="${XDG_CACHE_HOME:-$HOME/.cache}/onnx-sidecar/bin"
if [ -x "$bin/actionlint" ] && [ "$(cat "$bin/actionlint.stamp" 2>/dev/null)" = "$want" ]; then
  echo "$bin/actionlint"; exit 0
fi
if command -v actionlint >/dev/null 2>&1 && [ "$(actionlint -version 2>/dev/null | head -n 1)" = "${want#v}" ]; then
  command -v actionlint; exit 0
fi
command -v go >/dev/null 2>&1 || { echo "ensure-actionlint: Go is needed to build actionlint $want" >&2; exit 1; }
mkdir -p "$bin"
echo "ensure-actionlint: building actionlint $want into $bin (one time)" >&2
# -X as in actionlint's release build: the version `actionlint -version` reports.
GOBIN="$bin" GOFLAGS=-mod=mod CGO_ENABLED=0 go install \
  -ldflags "-s -w -X github.com/rhysd/actionlint.version=${want#v}" \
  "github.com/rhysd/actionlint/cmd/actionlint@$want" >&2
echo "$want" >"$bin/actionlint.stamp"
echo "$bin/actionlint"
