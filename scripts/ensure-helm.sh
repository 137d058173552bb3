#!/usr/bin/env bash
# Prints the path of a Helm v3.22.0 binary, building it with `go install` the first time.
# The binary is cached outside the repository (XDG cache) so CI builds it once per machine.
# A `helm` already on PATH is used when it is exactly that version; HELM=/path overrides all.
set -euo pipefail
want=v3.22.0
# The Kubernetes version Helm assumes without a cluster (helm template, helm lint) comes
# from link-time flags in Helm's release Makefile; v3.22.0 is built against client-go v0.37.
k8s_major=1
k8s_minor=37
stamp="$want+k8s$k8s_major.$k8s_minor"
if [ -n "${HELM:-}" ]; then echo "$HELM"; exit 0; fi
bin="${XDG_CACHE_HOME:-$HOME/.cache}/onnx-sidecar/bin"
if [ -x "$bin/helm" ] && [ "$(cat "$bin/helm.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$bin/helm"; exit 0
fi
if command -v helm >/dev/null 2>&1 && helm version --template '{{.Version}}' 2>/dev/null | grep -qx "$want"; then
  command -v helm; exit 0
fi
command -v go >/dev/null 2>&1 || { echo "ensure-helm: Go is needed to build helm $want" >&2; exit 1; }
mkdir -p "$bin"
echo "ensure-helm: building helm $want into $bin (one time)" >&2
# -ldflags as in Helm's Makefile: the version it reports and its default Kubernetes version.
ld="-s -w -X helm.sh/helm/v3/internal/version.version=$want"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ld="$ld -X $pkg.k8sVersionMajor=$k8s_major -X $pkg.k8sVersionMinor=$k8s_minor"
done
GOBIN="$bin" GOFLAGS=-mod=mod CGO_ENABLED=0 go install -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$want" >&2
echo "$stamp" >"$bin/helm.stamp"
echo "$bin/helm"
