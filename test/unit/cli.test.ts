/** The CLI's pure parts: flag checks, the onboarding plan, status summaries, rotation, output. */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  csv,
  InputError,
  parseClusterId,
  parseHttpsUrl,
  parseRecordsName,
  parseRecoveryDays,
  parseRegistries,
  parseSeconds,
} from "../../cli/core/inputs.ts";
import {
  baseOfWebhookUrl,
  buildClusterRecord,
  canonicalJson,
  conflictingWebhooks,
  describeAccess,
  keepRefresherKubeconfig,
  onboardAccess,
  refresherKubeconfig,
  registriesOutsideStack,
  registryPartitionProblems,
  tokenInWebhookUrl,
  webhookTokenFrom,
  webhookUrl,
} from "../../cli/core/onboard-plan.ts";
import { withNextToken, withOnlyToken } from "../../cli/core/rotation.ts";
import { summarizeCluster } from "../../cli/core/status.ts";
import { formatDuration, redact, scrub, table } from "../../cli/ui.ts";
import {
  type ClusterRecord,
  parseWebhookItem,
  splitClusterRecord,
} from "../../functions/core/cluster-record.ts";

/** The webhook's own parser on the part of the record it reads, as stored. */
const webhookParses = (record: ClusterRecord) =>
  parseWebhookItem({ layout: 2, ...splitClusterRecord(record).webhook }, record.clusterId);

import { contractNames } from "../../functions/core/contract.ts";
import { checkKubeconfig } from "../../functions/core/kubeconfig.ts";
import { toRfc3339 } from "../../functions/core/time.ts";

const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const names = contractNames();
const HOUR = 3600_000;
const NOW = Date.UTC(2026, 10, 23, 12);

/** A bound ServiceAccount token's shape: only the claims the checks read, unsigned. */
function serviceAccountJwt(
  issuedAtMs: number,
  lifetimeMs: number,
  name = "ecr-anywhere-refresher",
) {
  const claims = {
    iat: issuedAtMs / 1000,
    exp: (issuedAtMs + lifetimeMs) / 1000,
    "kubernetes.io": { namespace: "ecr-anywhere", serviceaccount: { name } },
  };
  return `e30.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`;
}

describe("flag checks", () => {
  it("splits lists, trims, drops empties and duplicates", () => {
    expect(csv(" a, b,,a ,c")).toEqual(["a", "b", "c"]);
    expect(() => csv(" , ")).toThrow(InputError);
  });

  it("accepts ECR hosts in any case and names what is wrong otherwise", () => {
    expect(parseRegistries(EAST.toUpperCase())).toEqual([EAST]);
    for (const bad of ["docker.io", `https://${EAST}`, `${EAST}/v2`, `${EAST}:443`])
      expect(() => parseRegistries(`${EAST},${bad}`)).toThrow(
        `"${bad.toLowerCase()}" is not an ECR registry host`,
      );
  });

  it("checks cluster ids, URLs, seconds and recovery windows", () => {
    expect(parseClusterId("gke-prod")).toBe("gke-prod");
    expect(() => parseClusterId("GKE_prod")).toThrow(/DNS-1123 label/);
    expect(parseHttpsUrl("https://abc.lambda-url.us-east-1.on.aws/")).toBe(
      "https://abc.lambda-url.us-east-1.on.aws",
    );
    for (const bad of ["http://x", "https://u:p@x", "https://x/?a=1", "not a url"])
      expect(() => parseHttpsUrl(bad)).toThrow(/https:\/\/ URL/);
    expect(parseSeconds("90")).toBe(90);
    expect(() => parseSeconds("-1")).toThrow(InputError);
    expect(parseRecoveryDays("7")).toBe(7);
    expect(parseRecoveryDays("1")).toBe(1);
    expect(() => parseRecoveryDays("31")).toThrow(/1 to 30/);
    expect(() => parseRecoveryDays("0")).toThrow(/1 to 30/);
    expect(parseRecordsName("team-a.clusters_2")).toBe("team-a.clusters_2");
    expect(() => parseRecordsName("a/b")).toThrow(/not a records name/);
  });
});

describe("webhook URL and token", () => {
  it("makes 256-bit base64url tokens whose hash is what the record keeps", () => {
    const token = webhookTokenFrom(new Uint8Array(32).fill(7));
    expect(token.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(token.sha256).toBe(createHash("sha256").update(token.token).digest("hex"));
    expect(() => webhookTokenFrom(new Uint8Array(16))).toThrow(/32 random bytes/);
  });

  it("finds this cluster's token in a URL, and no other cluster's", () => {
    const { token } = webhookTokenFrom(new Uint8Array(32).fill(1));
    const url = webhookUrl("https://abc.lambda-url.us-east-1.on.aws/", "gke-prod", token);
    expect(url).toBe(`https://abc.lambda-url.us-east-1.on.aws/v1/clusters/gke-prod/${token}`);
    expect(tokenInWebhookUrl(url, "gke-prod")).toBe(token);
    expect(tokenInWebhookUrl(url, "aks-prod")).toBeUndefined();
    expect(tokenInWebhookUrl("https://x/v1/clusters/gke-prod/short", "gke-prod")).toBeUndefined();
    expect(tokenInWebhookUrl(undefined, "gke-prod")).toBeUndefined();
    expect(baseOfWebhookUrl(url)).toBe("https://abc.lambda-url.us-east-1.on.aws");
  });
});

describe("refresher kubeconfig", () => {
  const wanted = {
    server: "https://203.0.113.5:6443",
    caData: Buffer.from("CA").toString("base64"),
  };

  it("passes the record's kubeconfig checks", () => {
    const text = refresherKubeconfig({
      clusterId: "gke-prod",
      ...wanted,
      token: serviceAccountJwt(NOW, 7 * 24 * HOUR),
    });
    expect(checkKubeconfig(text)).toEqual({ ok: true });
  });

  it("is kept while its token has more than half its life and the target is the same", () => {
    const fresh = refresherKubeconfig({
      clusterId: "c",
      ...wanted,
      token: serviceAccountJwt(NOW - HOUR, 48 * HOUR),
    });
    expect(keepRefresherKubeconfig(fresh, wanted, NOW)).toBe(true);
    expect(keepRefresherKubeconfig(fresh, wanted, NOW + 24 * HOUR)).toBe(false);
    expect(keepRefresherKubeconfig(fresh, { ...wanted, server: "https://10.0.0.1" }, NOW)).toBe(
      false,
    );
    expect(keepRefresherKubeconfig(fresh, { ...wanted, caData: "Other" }, NOW)).toBe(false);
    const otherAccount = refresherKubeconfig({
      clusterId: "c",
      ...wanted,
      token: serviceAccountJwt(NOW, 48 * HOUR, "someone"),
    });
    expect(keepRefresherKubeconfig(otherAccount, wanted, NOW)).toBe(false);
    expect(keepRefresherKubeconfig(undefined, wanted, NOW)).toBe(false);
  });
});

describe("cluster record", () => {
  const inputs = { clusterId: "gke-prod", registries: [EAST], namespaces: ["apps", "web"] };

  it("is valid for the webhook's own parser, with ensure when asked", () => {
    const record = buildClusterRecord(
      {
        ...inputs,
        ensureSecret: "ecr-pull",
        serviceAccounts: ["default"],
        allowedSourceCidrs: ["203.0.113.0/24"],
      },
      "kubeconfig",
      ["a".repeat(64)],
    );
    expect(record.ensure).toEqual({
      secretName: "ecr-pull",
      namespaces: ["apps", "web"],
      serviceAccounts: ["default"],
    });
    expect(webhookParses(record)).toMatchObject({ ok: true });
    expect(buildClusterRecord(inputs, "k", ["a".repeat(64)])).not.toHaveProperty("ensure");
  });

  it("records the pull-through cache opt-in", () => {
    const record = buildClusterRecord(
      {
        ...inputs,
        roleArn: "arn:aws:iam::123456789012:role/ecr-pull",
        repositories: ["arn:aws:ecr:us-east-1:123456789012:repository/ecr-public/*"],
        pullThroughCache: true,
      },
      "k",
      ["a".repeat(64)],
    );
    expect(record.pullThroughCache).toBe(true);
    expect(webhookParses(record)).toMatchObject({ ok: true });
    expect(buildClusterRecord(inputs, "k", ["a".repeat(64)])).not.toHaveProperty(
      "pullThroughCache",
    );
  });

  it("is never built invalid", () => {
    expect(() => buildClusterRecord(inputs, "k", ["not-a-hash"])).toThrow(/would be invalid/);
  });

  it("compares without regard to key order", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: 3 } })).toBe(
      canonicalJson({ a: { c: 3, d: [2, 1] }, b: 1 }),
    );
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
  });

  it("rotates through two valid hashes to one", () => {
    const record = buildClusterRecord(inputs, "k", ["a".repeat(64)]);
    expect(withNextToken(record, "a".repeat(64), "b".repeat(64)).webhookTokenSha256).toEqual([
      "a".repeat(64),
      "b".repeat(64),
    ]);
    expect(withOnlyToken(record, "b".repeat(64)).webhookTokenSha256).toEqual(["b".repeat(64)]);
  });
});

describe("partitions", () => {
  it("refuses registries outside the stack's partition, read from its key's ARN", () => {
    const china = "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn";
    expect(
      registryPartitionProblems([EAST, china], "arn:aws:kms:us-east-1:123456789012:key/k"),
    ).toEqual([
      expect.stringMatching(
        /registry 123456789012\.dkr\.ecr\.cn-north-1\.amazonaws\.com\.cn is in partition aws-cn, but this stack runs in aws/,
      ),
    ]);
    expect(
      registryPartitionProblems([china], "arn:aws-cn:kms:cn-north-1:123456789012:key/k"),
    ).toEqual([]);
  });
});

describe("the stack's allowedRegistries", () => {
  const WEST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
  const allowed = [EAST, "public.ecr.aws"];

  it("refuses a host outside them, naming it and the stack's list", () => {
    expect(registriesOutsideStack({ registries: [EAST, WEST] }, allowed)).toEqual([
      `--registries: ${WEST} is outside the stack's allowedRegistries (${EAST}, public.ecr.aws)`,
    ]);
    expect(registriesOutsideStack({ registries: [WEST] }, [EAST])).toHaveLength(1);
    // Another account in the same region is another registry.
    expect(
      registriesOutsideStack({ registries: ["210987654321.dkr.ecr.us-east-1.amazonaws.com"] }, [
        EAST,
      ]),
    ).toHaveLength(1);
  });

  it("grants as the stack's IAM does: by account and region, so FIPS and dual-stack hosts are within their ordinary host", () => {
    expect(
      registriesOutsideStack(
        {
          registries: [
            EAST,
            "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
            "123456789012.dkr-ecr.us-east-1.on.aws",
            "public.ecr.aws",
          ],
        },
        allowed,
      ),
    ).toEqual([]);
    // ECR Public only when listed.
    expect(registriesOutsideStack({ registries: ["public.ecr.aws"] }, [EAST])).toHaveLength(1);
  });

  it("refuses repository ARNs in a registry outside them", () => {
    const inside = "arn:aws:ecr:us-east-1:123456789012:repository/team-a/*";
    const outside = "arn:aws:ecr:eu-west-1:123456789012:repository/team-a/*";
    expect(
      registriesOutsideStack({ registries: [EAST], repositories: [inside, outside] }, allowed),
    ).toEqual([
      `--repositories: ${outside} is in a registry outside the stack's allowedRegistries (${EAST}, public.ecr.aws)`,
    ]);
    // Another partition's ARN names another registry, whatever the account and region.
    expect(
      registriesOutsideStack(
        {
          registries: [EAST],
          repositories: ["arn:aws-us-gov:ecr:us-east-1:123456789012:repository/x"],
        },
        allowed,
      ),
    ).toHaveLength(1);
  });
});

describe("access onboard needs", () => {
  it("asks for create and patch (server-side apply) and the verify write in every namespace", () => {
    const checks = onboardAccess(
      { clusterId: "c", registries: [EAST], namespaces: ["apps"] },
      false,
    ).map(describeAccess);
    expect(checks).toContain("patch rolebindings.rbac.authorization.k8s.io in namespace apps");
    expect(checks).toContain("create rolebindings.rbac.authorization.k8s.io in namespace apps");
    expect(checks).toContain("create secrets in namespace apps");
    expect(checks).toContain("create serviceaccounts/token in namespace ecr-anywhere");
    expect(checks).toContain(
      "patch mutatingwebhookconfigurations.admissionregistration.k8s.io (cluster-wide)",
    );
    expect(checks.some((check) => check.startsWith("delete"))).toBe(false);
    expect(
      onboardAccess({ clusterId: "c", registries: [EAST], namespaces: [] }, true).map(
        describeAccess,
      ),
    ).toContain("delete mutatingwebhookconfigurations.admissionregistration.k8s.io (cluster-wide)");
  });
});

describe("migration guard", () => {
  const inCluster = { service: { namespace: "ecr-anywhere", name: "webhook" } };
  it("finds in-cluster Service webhooks that select the same labels, and nothing else", () => {
    const found = conflictingWebhooks(
      [
        {
          name: "helm",
          webhooks: [
            {
              name: "a",
              clientConfig: inCluster,
              objectSelector: { matchLabels: { [names.managedLabel]: "true" } },
            },
          ],
        },
        {
          name: "helm-expressions",
          webhooks: [
            {
              name: "b",
              clientConfig: inCluster,
              namespaceSelector: { matchExpressions: [{ key: names.namespaceLabel }] },
            },
          ],
        },
        {
          name: "unrelated",
          webhooks: [
            { name: "c", clientConfig: inCluster, objectSelector: { matchLabels: { app: "x" } } },
          ],
        },
        {
          name: "by-url",
          webhooks: [
            {
              name: "d",
              clientConfig: { url: "https://x" },
              objectSelector: { matchLabels: { [names.managedLabel]: "true" } },
            },
          ],
        },
        {
          name: "ecr-anywhere",
          webhooks: [
            {
              name: "e",
              clientConfig: inCluster,
              objectSelector: { matchLabels: { [names.managedLabel]: "true" } },
            },
          ],
        },
      ],
      names,
    );
    expect(found).toEqual([
      { configuration: "helm", webhook: "a", service: "ecr-anywhere/webhook" },
      { configuration: "helm-expressions", webhook: "b", service: "ecr-anywhere/webhook" },
    ]);
  });
});

describe("status summary", () => {
  const secret = (
    name: string,
    updatedAtMs: number | undefined,
    expiresAtMs: number | undefined,
  ) => ({
    namespace: "apps",
    name,
    annotations: {
      ...(updatedAtMs === undefined ? {} : { [names.updatedAtAnnotation]: toRfc3339(updatedAtMs) }),
      ...(expiresAtMs === undefined ? {} : { [names.expiresAtAnnotation]: toRfc3339(expiresAtMs) }),
    },
  });

  it("counts stale and expired Secrets, the least time left and the newest update", () => {
    const status = summarizeCluster(
      "c",
      ["apps"],
      [
        secret("fresh", NOW - HOUR, NOW + 11 * HOUR),
        secret("stale", NOW - 8 * HOUR, NOW + 4 * HOUR),
        secret("expired", NOW - 13 * HOUR, NOW - HOUR),
        secret("never-filled", undefined, undefined),
      ],
      names,
      NOW,
      6 * HOUR,
    );
    expect(status).toMatchObject({
      managedSecrets: 4,
      staleSecrets: 3,
      expiredSecrets: 2,
      leastRemainingMs: -HOUR,
      newestUpdatedAt: toRfc3339(NOW - HOUR),
    });
    expect(status.problems).toEqual([
      "2 managed Secret(s) without valid credentials",
      "1 managed Secret(s) stale",
    ]);
  });

  it("is healthy with fresh Secrets, and says when no namespace is enabled", () => {
    expect(
      summarizeCluster("c", ["apps"], [secret("fresh", NOW, NOW + 12 * HOUR)], names, NOW, 6 * HOUR)
        .problems,
    ).toEqual([]);
    expect(summarizeCluster("c", [], [], names, NOW, 6 * HOUR)).toMatchObject({
      leastRemainingMs: undefined,
      problems: ["no enabled namespaces"],
    });
  });
});

describe("output", () => {
  it("formats durations and tables", () => {
    expect(formatDuration(3 * HOUR + 5 * 60_000)).toBe("3h 05m");
    expect(formatDuration(65_000)).toBe("1m 05s");
    expect(formatDuration(-120_000)).toBe("-2m 00s");
    expect(table(["A", "LONGER"], [["xyz", "1"]])).toBe("A    LONGER\nxyz  1");
  });

  it("scrubs registered secrets from anything it prints", () => {
    const token = "t".repeat(43);
    redact(token);
    expect(scrub(`Post "https://x/v1/clusters/c/${token}?timeout=10s": EOF`)).toBe(
      'Post "https://x/v1/clusters/c/<redacted>?timeout=10s": EOF',
    );
  });
});
