#!/usr/bin/env bash
# Writes (or rewrites) the Go module that pins one kube-apiserver minor for the end-to-end tests:
# testbed/control-plane/kube-apiserver-<minor>/go.mod and go.sum, with k8s.io/kubernetes at the
# given tag, its staging modules replaced by their published tags, and a `toolchain` line naming
# the Go release that Kubernetes tag was built with (its .go-version), which
# scripts/build-control-plane.sh then uses through GOTOOLCHAIN. Run it by hand when adding a minor
# or moving to a newer patch; the build script never changes the pins.
#
#   scripts/pin-kube-apiserver.sh 1.32.13
set -euo pipefail
version="${1:?usage: $0 <kubernetes version, e.g. 1.32.13>}"
[[ "$version" =~ ^1\.([0-9]+)\.([0-9]+)$ ]] || { echo "not a 1.N.P version: $version" >&2; exit 2; }
minor="1.${BASH_REMATCH[1]}"
staging_tag="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="$repo/testbed/control-plane/kube-apiserver-$minor"
mkdir -p "$dir"
cd "$dir"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

upstream_mod="$(go mod download -json "k8s.io/kubernetes@v$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')"
go_directive="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$upstream_mod")"
# The `tool` directive needs go 1.24 in go.mod; older tags keep their own godebug defaults below.
if [ "$(printf '%s\n1.24\n' "$go_directive" | sort -V | head -1)" != "1.24" ]; then go_directive=1.24; fi
godebug="$(grep '^godebug ' "$upstream_mod" || true)"
# Every staging module k8s.io/kubernetes replaces with ./staging/… gets its published tag instead.
replacements="$(sed -n 's|^\t\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\t\1 => \1 '"$staging_tag"'|p' "$upstream_mod")"

cat >go.mod <<EOF
// Pins the kube-apiserver $minor the end-to-end tests build from the Go module proxy
// (written by scripts/pin-kube-apiserver.sh $version; see docs/kubernetes-versions.md).
module ecr-anywhere.local/testbed/kube-apiserver-$minor

go $go_directive

$godebug

// k8s.io/kubernetes points its staging modules at ./staging; the published tags replace them.
replace (
$replacements
)
EOF
rm -f go.sum
go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@v$version"
source_dir="$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)"
go_release="$(tr -d '[:space:]' <"$source_dir/.go-version")"
go mod edit -toolchain="go$go_release"
go mod tidy
echo "pinned kube-apiserver v$version in $dir (Go $go_release)" >&2
