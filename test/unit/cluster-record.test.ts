import { describe, expect, it } from "vitest";
import { parseClusterRecord } from "../../functions/core/cluster-record.ts";
import { refresherConfigFromEnv, webhookConfigFromEnv } from "../../functions/core/config.ts";

const HASH = "a".repeat(64);
const minimal = {
  version: 1,
  clusterId: "gke-prod",
  kubeconfig: "apiVersion: v1\nkind: Config\n",
  webhookTokenSha256: [HASH],
  registries: ["123456789012.dkr.ecr.us-east-1.amazonaws.com"],
};

describe("parseClusterRecord", () => {
  it("accepts the minimal and the full record of the contract", () => {
    expect(parseClusterRecord(JSON.stringify(minimal), "gke-prod")).toMatchObject({ ok: true });
    const full = {
      ...minimal,
      webhookTokenSha256: [HASH, "B".repeat(64)],
      roleArn: "arn:aws:iam::123456789012:role/ecr-pull-gke-prod",
      repositories: ["arn:aws:ecr:us-east-1:123456789012:repository/team-a/*"],
      allowedSourceCidrs: ["203.0.113.0/24", "2001:db8::/32"],
      ensure: { secretName: "ecr-pull", namespaces: ["apps"], serviceAccounts: ["default"] },
    };
    const parsed = parseClusterRecord(JSON.stringify(full));
    expect(parsed.ok && parsed.value.webhookTokenSha256).toEqual([HASH, "b".repeat(64)]);
  });

  it("names an unknown version as such", () => {
    expect(parseClusterRecord(JSON.stringify({ ...minimal, version: 2 }))).toEqual({
      ok: false,
      error: "unsupported cluster record version 2; this release reads version 1",
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
    const parsed = parseClusterRecord(typeof record === "string" ? record : JSON.stringify(record));
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toContain(expected);
  });

  it("accepts repositories without a role: every token is minted under the record's session policy", () => {
    const narrowed = {
      ...minimal,
      repositories: ["arn:aws:ecr:us-east-1:123456789012:repository/a/*"],
      pullThroughCache: true,
    };
    expect(parseClusterRecord(JSON.stringify(narrowed))).toMatchObject({ ok: true });
  });

  it("rejects a record filed under another cluster's name", () => {
    expect(parseClusterRecord(JSON.stringify(minimal), "aks-dev")).toMatchObject({
      ok: false,
      error: expect.stringContaining("does not match"),
    });
  });

  it("never echoes field values in its errors", () => {
    const secretish = "super-secret-kubeconfig-token";
    const parsed = parseClusterRecord(
      JSON.stringify({ ...minimal, kubeconfig: 42, clusterId: secretish }),
    );
    expect(!parsed.ok && parsed.error).not.toContain(secretish);
  });
});

describe("partitions", () => {
  const record = (registries: string[]) =>
    JSON.stringify({
      version: 1,
      clusterId: "c",
      kubeconfig: "k",
      webhookTokenSha256: ["a".repeat(64)],
      registries,
    });
  const china = "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn";
  const east = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

  it("refuses a registry of another partition than the stack's, saying why", () => {
    expect(parseClusterRecord(record([east, china]), "c", "aws")).toEqual({
      ok: false,
      error: `registry ${china} is in partition aws-cn, but this stack runs in aws: ECR tokens cannot cross partitions (deploy an ecr-anywhere stack in aws-cn for it)`,
    });
    expect(parseClusterRecord(record([china]), "c", "aws-cn")).toMatchObject({ ok: true });
    expect(parseClusterRecord(record([east, china]), "c")).toMatchObject({ ok: true });
  });

  it("takes the stack's partition from AWS_REGION", () => {
    expect(webhookConfigFromEnv({ AWS_REGION: "cn-northwest-1" }).partition).toBe("aws-cn");
    expect(refresherConfigFromEnv({ AWS_REGION: "us-gov-west-1" }).partition).toBe("aws-us-gov");
    expect(webhookConfigFromEnv({}).partition).toBeUndefined();
  });
});
