#!/usr/bin/env bash
# Builds (once) the real control plane the end-to-end test runs against:
# kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, the kubelet and kubectl from the
# k8s.io/kubernetes Go module, and a single-member etcd (go.etcd.io/etcd/server/v3/embed).
# The binaries are cached outside the repository; a second run only checks them.
#
#   e2e/build-control-plane.sh          # prints the bin directory on its last line
#
# Cold: about 11 minutes of compile on 2 idle cores (940 CPU-seconds, 2 GB RSS peak) plus
# downloading about 100 MB of Go modules (520 MB unpacked); the build cache takes 3 GB. Warm: instant.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module="$here/control-plane"
k8s_version="$(awk '$1=="k8s.io/kubernetes"{print $2}' "$module/go.mod")"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/onnx-sidecar"
bin="$cache/k8s-$k8s_version/bin"
tools=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl etcd)

# A stamp names what was built, so a change to go.mod or the etcd main rebuilds.
stamp() { cat "$module/go.mod" "$module/go.sum" "$module/etcd/main.go" | sha256sum | cut -d' ' -f1; }
stamp_input="$(stamp)"
if [[ -f "$bin/.stamp" && "$(cat "$bin/.stamp")" == "$stamp_input" ]]; then
  ok=1
  for t in "${tools[@]}"; do [[ -x "$bin/$t" ]] || ok=0; done
  if [[ $ok == 1 ]]; then
    echo "control plane $k8s_version already built" >&2
    echo "$bin"
    exit 0
  fi
fi

command -v go >/dev/null || { echo "build-control-plane: go is required" >&2; exit 1; }

# Module and build caches outside the repository, shared with other Go builds here.
export GOPATH="${GOPATH:-$cache/gopath}"
export GOMODCACHE="${GOMODCACHE:-$GOPATH/pkg/mod}"
export GOCACHE="${GOCACHE:-$cache/gocache}"
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

mkdir -p "$bin.tmp"
minor="${k8s_version#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

cd "$module"
echo "building control plane $k8s_version into $bin (slow the first time)" >&2
start=$SECONDS
go build -trimpath -ldflags "$ldflags" -o "$bin.tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kube-proxy \
  k8s.io/kubernetes/cmd/kubelet \
  k8s.io/kubernetes/cmd/kubectl \
  ./etcd >&2
echo "built in $((SECONDS - start))s" >&2

rm -rf "$bin"
mv "$bin.tmp" "$bin"
stamp >"$bin/.stamp" # after the build: -mod=mod may have completed go.sum
echo "$bin"
