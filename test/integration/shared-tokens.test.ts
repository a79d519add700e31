/**
 * Tokens shared across execution environments through DynamoDB (moto), with the real SDK: each
 * webhook instance here stands for one environment (its own caches). One mint serves them all,
 * environments that miss together mint once, a cluster never receives a token minted for another
 * cluster's role or session policy, and a store that is down costs a mint, not an admission.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { createTelemetry } from "../../functions/telemetry.ts";
import { createWebhookFromEnv, type Webhook } from "../../functions/webhook/webhook.ts";
import { createTokenTable, localAwsEnv, putClusterRecord } from "../../testbed/aws-env.ts";
import { type EcrStandIn, startEcrStandIn } from "../../testbed/ecr-stand-in.ts";
import {
  admissionReview,
  applied,
  decodeDockerConfig,
  managedSecret,
  newWebhookToken,
  webhookEvent,
} from "../support/admission.ts";
import { restoreEnv } from "../support/env.ts";
import { type CapturedOutput, captureOutput } from "../support/output.ts";

const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const motoUrl = inject("motoUrl");
let TABLE = "";
let tables = 0;
let dynamo: DynamoDBClient;
const HOUR = 3600_000;
const savedEnv = { ...process.env };
let ecr: EcrStandIn;
let output: CapturedOutput;
let baseEnv: Record<string, string>;
const tokens = {
  plain: newWebhookToken(),
  plainToo: newWebhookToken(),
  roleA: newWebhookToken(),
  roleAOther: newWebhookToken(),
  roleANarrow: newWebhookToken(),
};
const ROLE = "arn:aws:iam::123456789012:role/ecr-pull-shared";

beforeAll(async () => {
  ecr = await startEcrStandIn();
  baseEnv = {
    ...localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: ecr.url }),
    AWS_ENDPOINT_URL_DYNAMODB: motoUrl,
  };
  dynamo = new DynamoDBClient({
    endpoint: motoUrl,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIAWEBHOOKTESTKEY01", secretAccessKey: "x" },
  });
  const record = (clusterId: string, sha256: string, extra: Record<string, unknown> = {}) =>
    putClusterRecord(motoUrl, {
      clusterId,
      kubeconfig: "apiVersion: v1\nkind: Config\n",
      webhookTokenSha256: [sha256],
      registries: [EAST],
      ...extra,
    });
  await Promise.all([
    record("shared-plain", tokens.plain.sha256),
    record("shared-plain-too", tokens.plainToo.sha256),
    record("shared-role-a", tokens.roleA.sha256, { roleArn: ROLE }),
    record("shared-role-a-other", tokens.roleAOther.sha256, { roleArn: ROLE }),
    record("shared-role-a-narrow", tokens.roleANarrow.sha256, {
      roleArn: ROLE,
      repositories: ["arn:aws:ecr:us-east-1:123456789012:repository/team-a/*"],
    }),
  ]);
});

afterAll(async () => {
  await ecr.stop();
});

beforeEach(async () => {
  // A table of its own per test: plain clusters share one key, so tests would see each other's tokens.
  TABLE = `shared-tokens-${++tables}`;
  await createTokenTable(dynamo, TABLE);
  ecr.reset();
  ecr.latencyMs = 100;
  Object.assign(process.env, baseEnv);
  output = captureOutput();
});

afterEach(() => {
  output.restore();
  restoreEnv(savedEnv);
});

/** One execution environment: a webhook with caches of its own (and the shared store, unless `shared` is false). */
function environment(table: string = TABLE, now: () => number = Date.now, shared = true): Webhook {
  return createWebhookFromEnv(
    { ...process.env, ...(shared ? { ECR_ANYWHERE_TOKEN_TABLE: table } : {}) },
    { now, telemetry: createTelemetry("ecr-anywhere-webhook") },
  );
}

async function passwordFrom(handler: Webhook, clusterId: string, token: string): Promise<string> {
  const object = managedSecret();
  const result = await handler(
    webhookEvent({ clusterId, token, body: admissionReview({ object }) }),
    { awsRequestId: "r" },
  );
  const response = (
    JSON.parse(String(result.body)) as { response: { allowed: boolean; patch?: string } }
  ).response;
  expect(response.allowed).toBe(true);
  const stored = applied(object, response);
  return decodeDockerConfig(stored.data?.[".dockerconfigjson"]).auths[EAST]?.password ?? "";
}

describe("tokens shared across execution environments", () => {
  it("serves a token minted in one environment to another, with no ECR call", async () => {
    const first = await passwordFrom(environment(), "shared-plain", tokens.plain.token);
    const second = await passwordFrom(environment(), "shared-plain-too", tokens.plainToo.token);
    expect(second).toBe(first);
    expect(ecr.callsIn("us-east-1")).toBe(1);
    expect(output.metric("TokenFetches")).toBe(1);
    expect(output.metric("TokenCacheHits")).toBe(1);
    const admissions = output.json().filter((line) => line.message === "admission");
    expect(admissions.map((line) => line.tokenSources)).toEqual([{ loaded: 1 }, { store: 1 }]);
    expect(output.text()).not.toContain(first);
  });

  it("mints once, not once per environment, when many cold environments miss together", async () => {
    const alone = await Promise.all(
      Array.from({ length: 8 }, () =>
        passwordFrom(environment("", Date.now, false), "shared-role-a", tokens.roleA.token),
      ),
    );
    expect(new Set(alone).size).toBe(8);
    expect(ecr.callsIn("us-east-1")).toBe(8);
    ecr.reset();
    ecr.latencyMs = 100;
    const passwords = await Promise.all(
      Array.from({ length: 8 }, () =>
        passwordFrom(environment(), "shared-role-a", tokens.roleA.token),
      ),
    );
    // One environment holds the lease and mints; the others wait for its token. On DynamoDB the
    // conditional claim is atomic; moto's is not quite under load, and a waiter mints itself once
    // the lease (3 s) runs out, so this 2-core machine may see a second mint, never eight.
    expect(ecr.callsIn("us-east-1")).toBeLessThanOrEqual(2);
    expect(new Set(passwords).size).toBeLessThanOrEqual(2);
  });

  it("never hands a cluster a token minted for another cluster's role session or session policy", async () => {
    const roleA = await passwordFrom(environment(), "shared-role-a", tokens.roleA.token);
    const sameRoleOtherCluster = await passwordFrom(
      environment(),
      "shared-role-a-other",
      tokens.roleAOther.token,
    );
    const narrower = await passwordFrom(
      environment(),
      "shared-role-a-narrow",
      tokens.roleANarrow.token,
    );
    const own = await passwordFrom(environment(), "shared-plain", tokens.plain.token);
    expect(new Set([roleA, sameRoleOtherCluster, narrower, own]).size).toBe(4);
    // A second environment of each finds its own, not another's.
    expect(await passwordFrom(environment(), "shared-role-a-other", tokens.roleAOther.token)).toBe(
      sameRoleOtherCluster,
    );
    expect(
      await passwordFrom(environment(), "shared-role-a-narrow", tokens.roleANarrow.token),
    ).toBe(narrower);
  });

  it("keeps them apart inside one environment too, whose in-memory cache sits in front of the store", async () => {
    const one = environment();
    const passwords = [
      await passwordFrom(one, "shared-role-a", tokens.roleA.token),
      await passwordFrom(one, "shared-role-a-other", tokens.roleAOther.token),
      await passwordFrom(one, "shared-role-a-narrow", tokens.roleANarrow.token),
      await passwordFrom(one, "shared-plain", tokens.plain.token),
    ];
    expect(new Set(passwords).size).toBe(4);
    // And each is served again from that cache to its own cluster only.
    expect(await passwordFrom(one, "shared-role-a-narrow", tokens.roleANarrow.token)).toBe(
      passwords[2],
    );
    expect(await passwordFrom(one, "shared-role-a", tokens.roleA.token)).toBe(passwords[0]);
  });

  it("does not serve a stored token past its reuse window", async () => {
    let now = Date.now();
    ecr.now = () => now;
    const first = await passwordFrom(
      environment(TABLE, () => now),
      "shared-plain",
      tokens.plain.token,
    );
    now += 7 * HOUR; // past half of the 12 h token's life
    const later = await passwordFrom(
      environment(TABLE, () => now),
      "shared-plain-too",
      tokens.plainToo.token,
    );
    expect(later).not.toBe(first);
    expect(ecr.callsIn("us-east-1")).toBe(2);
  });

  it("mints when the store is down, and says so", async () => {
    const password = await passwordFrom(
      environment("no-such-table"),
      "shared-plain",
      tokens.plain.token,
    );
    expect(password).toMatch(/^stand-in-us-east-1-/);
    expect(ecr.callsIn("us-east-1")).toBe(1);
    expect(output.text()).toMatch(/shared token store failed: minted instead/);
  });
});
