#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd that the end-to-end tests run, with `go build` from the Go
# module proxy, pinned by the Go modules under testbed/control-plane/ (one kube-apiserver-<minor>
# module per tested minor, written by scripts/pin-kube-apiserver.sh). Each binary is cached outside
# the repo, keyed by a hash of its module, so only the first build of each version is slow. A
# module whose go.mod names a `toolchain` is built with that Go release (GOTOOLCHAIN fetches it
# through the module proxy): older Kubernetes tags are built with the Go they were released with.
# The Go that starts a build is the one on PATH if new enough, else one fetched and cached by
# testbed/tools.ts (scripts/ensure-tools.ts go), so a machine without Go builds too.
#
#   scripts/build-control-plane.sh [minor]   prints a directory holding kube-apiserver and etcd
#
# The minor (e.g. 1.32) comes from the argument, else ECR_ANYWHERE_KUBE_VERSION, else the newest
# pinned one. `scripts/build-control-plane.sh --list` prints the pinned minors, oldest first.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
modules="$repo/testbed/control-plane"
cache_root="${ECR_ANYWHERE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecr-anywhere}/control-plane"
# The Node that `npm ci` installed (it runs TypeScript), else the machine's.
node="$repo/node_modules/.bin/node"
[ -x "$node" ] || node=node

pinned_minors() { find "$modules" -maxdepth 1 -name 'kube-apiserver-1.*' -printf '%f\n' | sed 's/^kube-apiserver-//' | sort -V; }
if [ "${1:-}" = "--list" ]; then pinned_minors; exit 0; fi
minor="${1:-${ECR_ANYWHERE_KUBE_VERSION:-$(pinned_minors | tail -1)}}"
minor="${minor#v}"
if [ ! -f "$modules/kube-apiserver-$minor/go.mod" ]; then
  echo "no pinned kube-apiserver $minor; pinned: $(pinned_minors | tr '\n' ' ')(add one with scripts/pin-kube-apiserver.sh)" >&2
  exit 2
fi

build() { # name, module dir, package, ldflags; prints the cached binary's path
  local name="$1" dir="$2" package="$3" ldflags="-s -w ${4:-}"
  local out toolchain go
  out="$cache_root/$(basename "$dir")-$(cat "$dir/go.mod" "$dir/go.sum" <(echo "$ldflags") | sha256sum | cut -c1-16)"
  if [ ! -x "$out/$name" ]; then
    go="$("$node" "$repo/scripts/ensure-tools.ts" go)"
    toolchain="$(sed -n 's/^toolchain \(go[0-9.]*\)$/\1/p' "$dir/go.mod")"
    echo "building $name from $package with ${toolchain:-$(GOTOOLCHAIN=local "$go" env GOVERSION)} (first time only; cached in $out)" >&2
    local started=$SECONDS
    mkdir -p "$out"
    (cd "$dir" && GOTOOLCHAIN="${toolchain:-local}" CGO_ENABLED=0 GOFLAGS=-mod=mod \
      "$go" build -trimpath -ldflags="$ldflags" -o "$out/$name.partial" "$package")
    mv "$out/$name.partial" "$out/$name"
    echo "built $name in $((SECONDS - started)) s" >&2
  fi
  echo "$out/$name"
}

etcd="$(build etcd "$modules/etcd" go.etcd.io/etcd/server/v3)"
# A plain `go build` reports v0.0.0 at /version (no major or minor): stamp the pinned tag the way
# Kubernetes' own build does (hack/lib/version.sh), so clients see the version they would in a cluster.
tag="$(sed -n 's/^\tk8s.io\/kubernetes \(v1\.[0-9.]*\)\( .*\)\{0,1\}$/\1/p' "$modules/kube-apiserver-$minor/go.mod")"
stamp=""
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $package.gitVersion=$tag -X $package.gitMajor=1 -X $package.gitMinor=${minor#1.} -X $package.gitTreeState=clean"
done
apiserver="$(build kube-apiserver "$modules/kube-apiserver-$minor" k8s.io/kubernetes/cmd/kube-apiserver "$stamp")"
# One directory with both, as the test bed expects: links to the two cached binaries.
bin="$cache_root/bin-$minor-$(basename "$(dirname "$etcd")")-$(basename "$(dirname "$apiserver")")"
mkdir -p "$bin"
ln -sfn "$etcd" "$bin/etcd"
ln -sfn "$apiserver" "$bin/kube-apiserver"
echo "$bin"
