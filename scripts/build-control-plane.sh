#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd that the end-to-end tests run, with `go build` from the Go
# module proxy, pinned by the Go modules under testbed/control-plane/. Binaries are cached outside
# the repo, keyed by a hash of those modules, so only the first build is slow.
#
#   scripts/build-control-plane.sh        prints the directory holding kube-apiserver and etcd
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
modules="$repo/testbed/control-plane"
cache_root="${ECR_ANYWHERE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecr-anywhere}"
key="$(cat "$modules"/*/go.mod "$modules"/*/go.sum | sha256sum | cut -c1-16)"
out="$cache_root/control-plane/$key"

build() { # name, module dir, package
  local name="$1" dir="$2" package="$3"
  if [ -x "$out/$name" ]; then return; fi
  echo "building $name from $package (first time only; cached in $out)" >&2
  local started=$SECONDS
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o "$out/$name.partial" "$package")
  mv "$out/$name.partial" "$out/$name"
  echo "built $name in $((SECONDS - started)) s" >&2
}

mkdir -p "$out"
build etcd "$modules/etcd" go.etcd.io/etcd/server/v3
build kube-apiserver "$modules/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
echo "$out"
