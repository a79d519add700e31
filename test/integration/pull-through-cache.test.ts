/**
 * Pull-through cache through the real SDK: a narrowed cluster that opted in (record
 * `pullThroughCache`) mints under a session policy that also allows importing upstream images;
 * one that did not, does not.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createTelemetry } from "../../functions/telemetry.ts";
import { createWebhookFromEnv } from "../../functions/webhook/webhook.ts";
import { localAwsEnv, putClusterRecord } from "../../testbed/aws-env.ts";
import { type EcrStandIn, startEcrStandIn } from "../../testbed/ecr-stand-in.ts";
import {
  admissionReview,
  clusterRecord,
  managedSecret,
  newWebhookToken,
  webhookEvent,
} from "../support/admission.ts";
import { restoreEnv } from "../support/env.ts";
import { type FaultProxy, STS_ACCESS_DENIED, startFaultProxy } from "../support/fault-server.ts";

const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const REPOSITORIES = ["arn:aws:ecr:us-east-1:123456789012:repository/docker-hub/*"];
const motoUrl = inject("motoUrl");
const savedEnv = { ...process.env };
const optedIn = newWebhookToken();
const plain = newWebhookToken();
let ecr: EcrStandIn;
let sts: FaultProxy;

beforeAll(async () => {
  ecr = await startEcrStandIn();
  // Records STS requests on their way to moto (nothing fails: the pattern matches no target).
  sts = await startFaultProxy(motoUrl, /^never$/, STS_ACCESS_DENIED);
  Object.assign(process.env, localAwsEnv({ records: motoUrl, sts: sts.url, ecr: ecr.url }), {
    POWERTOOLS_LOG_LEVEL: "SILENT",
  });
  for (const [clusterId, token, pullThroughCache] of [
    ["ptc-opted-in", optedIn, true],
    ["ptc-plain", plain, false],
  ] as const)
    await putClusterRecord(motoUrl, {
      ...clusterRecord(clusterId, token.sha256, [EAST]),
      roleArn: `arn:aws:iam::123456789012:role/${clusterId}`,
      repositories: REPOSITORIES,
      ...(pullThroughCache ? { pullThroughCache } : {}),
    });
});

afterAll(async () => {
  await ecr.stop();
  await sts.stop();
  restoreEnv(savedEnv);
});

/** The pull statement's actions of the session policy the webhook sent with AssumeRole. */
async function pullActionsFor(clusterId: string, token: string): Promise<unknown> {
  sts.bodies.length = 0;
  const webhook = createWebhookFromEnv(process.env, {
    telemetry: createTelemetry("ecr-anywhere-webhook"),
  });
  const result = await webhook(
    webhookEvent({ clusterId, token, body: admissionReview({ object: managedSecret() }) }),
    { awsRequestId: "r" },
  );
  expect(
    (JSON.parse(result.body ?? "{}") as { response: { allowed: boolean } }).response.allowed,
  ).toBe(true);
  const assumeRole = sts.bodies.find((body) => body.includes("Action=AssumeRole")) ?? "";
  const policy = JSON.parse(new URLSearchParams(assumeRole).get("Policy") ?? "{}") as {
    Statement: { Action: unknown; Resource: unknown }[];
  };
  expect(policy.Statement[1]?.Resource).toEqual(REPOSITORIES);
  return policy.Statement[1]?.Action;
}

describe("pull-through cache", () => {
  it("adds the import actions to the session policy of a cluster that opted in", async () => {
    expect(await pullActionsFor("ptc-opted-in", optedIn.token)).toEqual([
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchImportUpstreamImage",
      "ecr:CreateRepository",
    ]);
  });

  it("leaves them out for a cluster that did not", async () => {
    expect(await pullActionsFor("ptc-plain", plain.token)).toEqual([
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:BatchCheckLayerAvailability",
    ]);
  });
});
