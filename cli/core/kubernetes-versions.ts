/**
 * Which Kubernetes versions ECR Anywhere works with, and what `onboard` says about a server's
 * version: the features it needs set the minimum, and the minors the end-to-end suites run against
 * (testbed/control-plane/kube-apiserver-<minor>, docs/kubernetes-versions.md) set the tested range.
 * Pure: the caller reads the version from the API server.
 */

export interface KubernetesVersion {
  readonly major: number;
  readonly minor: number;
}

/** Each Kubernetes feature ECR Anywhere relies on, and the minor from which it is GA. */
export const FEATURE_MINIMUMS = [
  {
    feature: "server-side dry run (`dryRun=All`: onboard's and rotate-token's round trip)",
    minor: 18,
  },
  { feature: "events.k8s.io/v1 Events (the webhook's and refresher's notes)", minor: 19 },
  { feature: "TokenRequest (the refresher's kubeconfig token, renewed by itself)", minor: 20 },
  { feature: "server-side apply (onboard, offboard and rendered files)", minor: 22 },
  {
    feature:
      "ValidatingAdmissionPolicy (narrows the refresher's Secret writes; optional, left out below it)",
    minor: 30,
    optional: true,
  },
] as const satisfies readonly { feature: string; minor: number; optional?: boolean }[];

/** The oldest server `onboard` accepts: every required feature is GA there. */
export const MINIMUM_SUPPORTED: KubernetesVersion = {
  major: 1,
  minor: Math.max(
    ...FEATURE_MINIMUMS.filter((item) => !("optional" in item)).map((item) => item.minor),
  ),
};

/**
 * The minors whose real kube-apiserver the end-to-end suites run against in CI, oldest first: the
 * oldest a major provider still supported in December 2026, one between, and the newest.
 */
export const TESTED_MINORS = [32, 34, 36] as const;

export const OLDEST_TESTED: KubernetesVersion = { major: 1, minor: TESTED_MINORS[0] };
export const NEWEST_TESTED: KubernetesVersion = { major: 1, minor: TESTED_MINORS.at(-1) ?? 0 };

export type VersionVerdict =
  | { readonly kind: "tested" }
  | { readonly kind: "warn"; readonly message: string }
  | { readonly kind: "refuse"; readonly message: string };

export function formatVersion(version: KubernetesVersion): string {
  return `${version.major}.${version.minor}`;
}

function compare(a: KubernetesVersion, b: KubernetesVersion): number {
  return a.major !== b.major ? a.major - b.major : a.minor - b.minor;
}

/** Refuses a server older than the features need; warns outside the tested range. */
export function judgeServerVersion(version: KubernetesVersion): VersionVerdict {
  const found = formatVersion(version);
  if (!Number.isFinite(version.major) || !Number.isFinite(version.minor))
    return {
      kind: "warn",
      message: `the API server did not report a numeric Kubernetes version; ECR Anywhere needs ${formatVersion(MINIMUM_SUPPORTED)}+ and is tested on ${formatVersion(OLDEST_TESTED)}–${formatVersion(NEWEST_TESTED)}`,
    };
  if (compare(version, MINIMUM_SUPPORTED) < 0)
    return {
      kind: "refuse",
      message: `the API server runs Kubernetes ${found}; ECR Anywhere needs ${formatVersion(MINIMUM_SUPPORTED)} or newer (${featuresAbove(version).join(", ")}): upgrade the cluster first`,
    };
  if (compare(version, OLDEST_TESTED) < 0)
    return {
      kind: "warn",
      message: `Kubernetes ${found} is older than the oldest tested minor (${formatVersion(OLDEST_TESTED)}); it should work (${formatVersion(MINIMUM_SUPPORTED)}+ has every feature used) but is not tested`,
    };
  if (compare(version, NEWEST_TESTED) > 0)
    return {
      kind: "warn",
      message: `Kubernetes ${found} is newer than the newest tested minor (${formatVersion(NEWEST_TESTED)}); it should work but is not tested yet`,
    };
  return { kind: "tested" };
}

/** The required features a server of this version lacks, with the minor each needs. */
function featuresAbove(version: KubernetesVersion): string[] {
  return FEATURE_MINIMUMS.filter(
    (item) => !("optional" in item) && compare(version, { major: 1, minor: item.minor }) < 0,
  ).map((item) => `${item.feature.replace(/ \(.*$/, "")} needs 1.${item.minor}`);
}
