import { describe, expect, it } from "vitest";
import {
  joinClusterRecord,
  parseClusterRecord,
  parseRefresherItem,
  parseWebhookItem,
  splitClusterRecord,
} from "../../functions/core/cluster-record.ts";
import { webhookConfigFromEnv } from "../../functions/core/config.ts";
import { parseJson } from "../../functions/core/validation.ts";

const HASH = "a".repeat(64);
const minimal = {
  clusterId: "gke-prod",
  kubeconfig: "apiVersion: v1\nkind: Config\n",
  webhookTokenSha256: [HASH],
  registries: ["123456789012.dkr.ecr.us-east-1.amazonaws.com"],
};

/** The whole record's checks, as the CLI runs them before writing one (JSON text in, as before). */
const parseText = (text: string, clusterId?: string) => {
  const json = parseJson(text);
  return json.ok ? parseClusterRecord(json.value, clusterId) : json;
};

describe("parseClusterRecord", () => {
  it("accepts the minimal and the full record of the contract", () => {
    expect(parseText(JSON.stringify(minimal), "gke-prod")).toMatchObject({ ok: true });
    const full = {
      ...minimal,
      webhookTokenSha256: [HASH, "B".repeat(64)],
      roleArn: "arn:aws:iam::123456789012:role/ecr-pull-gke-prod",
      repositories: ["arn:aws:ecr:us-east-1:123456789012:repository/team-a/*"],
      allowedSourceCidrs: ["203.0.113.0/24", "2001:db8::/32"],
      ensure: { secretName: "ecr-pull", namespaces: ["apps"], serviceAccounts: ["default"] },
    };
    const parsed = parseText(JSON.stringify(full));
    expect(parsed.ok && parsed.value.webhookTokenSha256).toEqual([HASH, "b".repeat(64)]);
  });

  it("names an unknown layout as such, in either item", () => {
    const { webhook } = splitClusterRecord(minimal);
    expect(parseWebhookItem({ layout: 3, ...webhook })).toEqual({
      ok: false,
      error: "unsupported cluster record layout 3; this release reads layout 2",
    });
    expect(parseWebhookItem({ ...webhook })).toMatchObject({
      error: "unsupported cluster record layout null; this release reads layout 2",
    });
    expect(parseRefresherItem({ layout: 1, clusterId: "gke-prod" })).toMatchObject({
      error: expect.stringContaining("unsupported cluster record layout 1"),
    });
  });

  it.each([
    ["not JSON", "{", "not valid JSON"],
    ["a misspelt field", { ...minimal, allowedSourceCidr: ["10.0.0.0/8"] }, "allowedSourceCidr"],
    ["three hashes", { ...minimal, webhookTokenSha256: [HASH, HASH, HASH] }, "webhookTokenSha256"],
    ["a short hash", { ...minimal, webhookTokenSha256: ["abc"] }, "webhookTokenSha256.0"],
    ["a non-ECR registry", { ...minimal, registries: ["docker.io"] }, "registries.0"],
    ["no registries", { ...minimal, registries: [] }, "registries"],
    ["a bad CIDR", { ...minimal, allowedSourceCidrs: ["10.0.0.0/33"] }, "allowedSourceCidrs.0"],
    ["a bad role", { ...minimal, roleArn: "role/x" }, "roleArn"],
    ["a missing kubeconfig", { ...minimal, kubeconfig: undefined }, "kubeconfig"],
    [
      "pullThroughCache without repositories (the stack's setting applies)",
      { ...minimal, pullThroughCache: true },
      "pullThroughCache in a record needs repositories",
    ],
  ])("rejects %s with the field's path", (_what, record, expected) => {
    const parsed = parseText(typeof record === "string" ? record : JSON.stringify(record));
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toContain(expected);
  });

  it("accepts repositories without a role: every token is minted under the record's session policy", () => {
    const narrowed = {
      ...minimal,
      repositories: ["arn:aws:ecr:us-east-1:123456789012:repository/a/*"],
      pullThroughCache: true,
    };
    expect(parseText(JSON.stringify(narrowed))).toMatchObject({ ok: true });
  });

  it("rejects a record filed under another cluster's key", () => {
    expect(parseText(JSON.stringify(minimal), "aks-dev")).toMatchObject({
      ok: false,
      error: expect.stringContaining("does not match"),
    });
    const { webhook } = splitClusterRecord(minimal);
    expect(parseWebhookItem({ layout: 2, ...webhook }, "aks-dev")).toMatchObject({
      error: expect.stringContaining("does not match its key (aks-dev)"),
    });
  });

  it("never echoes field values in its errors", () => {
    const secretish = "super-secret-kubeconfig-token";
    const parsed = parseText(JSON.stringify({ ...minimal, kubeconfig: 42, clusterId: secretish }));
    expect(!parsed.ok && parsed.error).not.toContain(secretish);
  });
});

describe("the two parts of a record", () => {
  const full = {
    ...minimal,
    allowedSourceCidrs: ["203.0.113.0/24"],
    ensure: { secretName: "ecr-pull", namespaces: ["apps"] },
    refresher: { openFailures: ["u-1"] },
  };

  it("split into what the webhook reads (nothing secret) and what the refresher keeps, and join back", () => {
    const { webhook, refresher } = splitClusterRecord(full);
    expect(Object.keys(webhook).sort()).toEqual(
      ["allowedSourceCidrs", "clusterId", "registries", "webhookTokenSha256"].sort(),
    );
    expect(refresher).toEqual({
      clusterId: "gke-prod",
      kubeconfig: minimal.kubeconfig,
      ensure: full.ensure,
      refresher: full.refresher,
    });
    expect(joinClusterRecord(webhook, refresher)).toEqual(full);
  });

  it("refuse a field of the other part: the webhook's item never holds a kubeconfig", () => {
    const { webhook } = splitClusterRecord(full);
    expect(parseWebhookItem({ layout: 2, ...webhook, kubeconfig: "k" })).toMatchObject({
      ok: false,
      error: expect.stringContaining("kubeconfig"),
    });
    expect(
      parseRefresherItem({ layout: 2, clusterId: "gke-prod", revision: 0, registries: [] }),
    ).toMatchObject({ ok: false, error: expect.stringContaining("kubeconfig: missing") });
  });

  it("accept the deletion mark and TTL on both items", () => {
    const { webhook } = splitClusterRecord(full);
    const marks = { deletedAt: 1_800_000_000_000, expiresAt: 1_800_604_800 };
    expect(parseWebhookItem({ layout: 2, ...webhook, ...marks }).ok).toBe(true);
    expect(parseWebhookItem({ layout: 2, ...webhook, deletedAt: "yesterday" }).ok).toBe(false);
  });
});

describe("partitions", () => {
  const record = (registries: string[]) => ({
    layout: 2,
    clusterId: "c",
    webhookTokenSha256: ["a".repeat(64)],
    registries,
  });
  const china = "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn";
  const east = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

  it("refuses a registry of another partition than the stack's, saying why", () => {
    expect(parseWebhookItem(record([east, china]), "c", "aws")).toEqual({
      ok: false,
      error: `registry ${china} is in partition aws-cn, but this stack runs in aws: ECR tokens cannot cross partitions (deploy an ecr-anywhere stack in aws-cn for it)`,
    });
    expect(parseWebhookItem(record([china]), "c", "aws-cn")).toMatchObject({ ok: true });
    expect(parseWebhookItem(record([east, china]), "c")).toMatchObject({ ok: true });
  });

  it("takes the stack's partition from AWS_REGION", () => {
    expect(webhookConfigFromEnv({ AWS_REGION: "cn-northwest-1" }).partition).toBe("aws-cn");
    expect(webhookConfigFromEnv({ AWS_REGION: "us-gov-west-1" }).partition).toBe("aws-us-gov");
    expect(webhookConfigFromEnv({}).partition).toBeUndefined();
  });
});
