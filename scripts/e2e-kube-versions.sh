#!/usr/bin/env bash
# Runs the end-to-end suites that touch the API server (admission, refresher, Events, the CLI's
# onboard/status/rotate-token/offboard, header authentication, the ValidatingAdmissionPolicy) against
# older Kubernetes minors. `npm run test:e2e` runs every suite on the newest pinned minor; this runs
# the focused set on each minor given, default every pinned minor but the newest (see
# docs/kubernetes-versions.md). Builds each kube-apiserver first (cached after the first time).
#
#   scripts/e2e-kube-versions.sh [minor…]      e.g. scripts/e2e-kube-versions.sh 1.32
set -euo pipefail
cd "$(dirname "$0")/.."
focused=(
  test/e2e/admission.e2e.test.ts
  test/e2e/refresher.e2e.test.ts
  test/e2e/event-notes.e2e.test.ts
  test/e2e/cli.e2e.test.ts
  test/e2e/webhook-auth.e2e.test.ts
  test/e2e/refresher-secret-policy.e2e.test.ts
)
if [ "$#" -gt 0 ]; then minors=("$@"); else mapfile -t minors < <(scripts/build-control-plane.sh --list | head -n -1); fi
summary=()
for minor in "${minors[@]}"; do
  echo "== kube-apiserver $minor: build (cached after the first time), then the focused end-to-end suites"
  started=$SECONDS
  scripts/build-control-plane.sh "$minor" >/dev/null
  built=$SECONDS
  ECR_ANYWHERE_KUBE_VERSION="$minor" npm run -s test:e2e -- "${focused[@]}"
  summary+=("kube-apiserver $minor: build $((built - started)) s, focused e2e $((SECONDS - built)) s")
done
printf '%s\n' "${summary[@]}"
