#!/usr/bin/env bash
# Builds (once) what the end-to-end test's node needs besides the kubelet (which
# e2e/build-control-plane.sh builds with the rest of Kubernetes):
#   containerd, containerd-shim-runc-v2, ctr   github.com/containerd/containerd/v2 (e2e/node-tools)
#   registry                                   github.com/distribution/distribution/v3 cmd/registry
#   pause                                      build/pause/linux/pause.c of the k8s.io/kubernetes
#                                              module, gcc -static (the sandbox image's only file)
#   prometheus                                 github.com/prometheus/prometheus (e2e/prometheus) with
#                                              Kubernetes discovery only: Debian's package has none
#   coredns                                    github.com/coredns/coredns (e2e/coredns): the stock
#                                              server with the kubernetes plugin, the cluster's DNS
# runc and the CNI plugins come from Debian (apt-get install runc containernetworking-plugins).
# The binaries are cached outside the repository; a second run only checks them.
#
#   e2e/build-node.sh          # prints the bin directory on its last line
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module="$here/node-tools"
k8s_module="$here/control-plane"
k8s_version="$(awk '$1=="k8s.io/kubernetes"{print $2}' "$k8s_module/go.mod")"
containerd_version="$(awk '$1=="github.com/containerd/containerd/v2"{print $2}' "$module/go.mod")"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/onnx-sidecar"
bin="$cache/node-$containerd_version/bin"
tools=(containerd containerd-shim-runc-v2 ctr registry pause prometheus coredns)

export GOPATH="${GOPATH:-$cache/gopath}"
export GOMODCACHE="${GOMODCACHE:-$GOPATH/pkg/mod}"
export GOCACHE="${GOCACHE:-$cache/gocache}"
export GOFLAGS="-mod=mod -buildvcs=false"

prom_module="$here/prometheus"
dns_module="$here/coredns"
stamp() { cat "$module/go.mod" "$module/go.sum" "$k8s_module/go.mod" "$prom_module/go.mod" "$prom_module/go.sum" "$dns_module/go.mod" "$dns_module/go.sum" "$dns_module/main.go" | sha256sum | cut -d' ' -f1; }
stamp_input="$(stamp)"
if [[ -f "$bin/.stamp" && "$(cat "$bin/.stamp")" == "$stamp_input" ]]; then
  ok=1
  for t in "${tools[@]}"; do [[ -x "$bin/$t" ]] || ok=0; done
  if [[ $ok == 1 ]]; then
    echo "node tools (containerd $containerd_version) already built" >&2
    echo "$bin"
    exit 0
  fi
fi

command -v go >/dev/null || { echo "build-node: go is required" >&2; exit 1; }
command -v gcc >/dev/null || { echo "build-node: gcc is required (apt-get install gcc libc6-dev)" >&2; exit 1; }

rm -rf "$bin.tmp"
mkdir -p "$bin.tmp"
start=$SECONDS
echo "building containerd $containerd_version and the registry into $bin (slow the first time)" >&2
cd "$module"
# CGO off: static binaries; containerd then leaves out only the btrfs snapshotter (overlayfs is used).
# The version is stamped so that `containerd --version` and the kubelet's runtime check see v2.
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version" \
  -o "$bin.tmp/" \
  github.com/containerd/containerd/v2/cmd/containerd \
  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
  github.com/containerd/containerd/v2/cmd/ctr \
  github.com/distribution/distribution/v3/cmd/registry >&2

# Prometheus with only the Kubernetes service discovery compiled in (its build tags).
CGO_ENABLED=0 go -C "$prom_module" build -trimpath -tags remove_all_sd,enable_kubernetes_sd -ldflags "-s -w" \
  -o "$bin.tmp/" github.com/prometheus/prometheus/cmd/prometheus >&2

# CoreDNS: coremain with the plugins e2e/coredns/main.go lists.
CGO_ENABLED=0 go -C "$dns_module" build -trimpath -ldflags "-s -w" -o "$bin.tmp/coredns" . >&2

# The pause binary from the Kubernetes module the kubelet is built from.
go -C "$k8s_module" mod download k8s.io/kubernetes >&2
pause_src="$(go -C "$k8s_module" list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
gcc -Os -static -Wall -Werror -DVERSION="$k8s_version" -o "$bin.tmp/pause" "$pause_src"
strip "$bin.tmp/pause"
echo "built in $((SECONDS - start))s" >&2

rm -rf "$bin"
mv "$bin.tmp" "$bin"
stamp >"$bin/.stamp"
echo "$bin"
