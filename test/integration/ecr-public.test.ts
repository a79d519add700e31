/**
 * ECR Public (`public.ecr.aws`) through the real SDK: its token comes from ECR Public's own API in
 * us-east-1 (whatever region the webhook runs in), lands in the Secret as `docker login
 * public.ecr.aws` writes it, and a cluster narrowed by a session policy gets exactly the two
 * permissions minting it needs.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { ecrPublicClientFor } from "../../functions/adapters/ecr-public-minter.ts";
import { createTelemetry } from "../../functions/telemetry.ts";
import { createWebhookFromEnv } from "../../functions/webhook/webhook.ts";
import { localAwsEnv, putClusterRecord } from "../../testbed/aws-env.ts";
import { type EcrStandIn, startEcrStandIn } from "../../testbed/ecr-stand-in.ts";
import {
  admissionReview,
  applied,
  clusterRecord,
  decodeDockerConfig,
  managedSecret,
  names,
  newWebhookToken,
  webhookEvent,
} from "../support/admission.ts";
import { restoreEnv } from "../support/env.ts";
import { type FaultProxy, STS_ACCESS_DENIED, startFaultProxy } from "../support/fault-server.ts";

const PUBLIC = "public.ecr.aws";
const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const motoUrl = inject("motoUrl");
const savedEnv = { ...process.env };
const plain = newWebhookToken();
const narrowed = newWebhookToken();
let ecr: EcrStandIn;
let sts: FaultProxy;

beforeAll(async () => {
  ecr = await startEcrStandIn();
  // Records STS requests on their way to moto (nothing fails: the pattern matches no target).
  sts = await startFaultProxy(motoUrl, /^never$/, STS_ACCESS_DENIED);
  Object.assign(process.env, localAwsEnv({ records: motoUrl, sts: sts.url, ecr: ecr.url }), {
    POWERTOOLS_LOG_LEVEL: "SILENT",
    // The webhook runs in another region: ECR Public's token must still come from us-east-1.
    AWS_REGION: "eu-west-1",
  });
  // moto keeps tables and keys per region: the records live where the webhook runs.
  const where = { region: "eu-west-1" };
  await putClusterRecord(motoUrl, clusterRecord("public", plain.sha256, [EAST, PUBLIC]), where);
  await putClusterRecord(
    motoUrl,
    {
      ...clusterRecord("public-narrowed", narrowed.sha256, [PUBLIC]),
      roleArn: "arn:aws:iam::123456789012:role/ecr-pull-public",
      repositories: ["arn:aws:ecr:us-east-1:123456789012:repository/team-a/*"],
    },
    where,
  );
});

afterAll(async () => {
  await ecr.stop();
  await sts.stop();
  restoreEnv(savedEnv);
});

beforeEach(() => ecr.reset());

async function admit(clusterId: string, token: string) {
  const webhook = createWebhookFromEnv(process.env, {
    telemetry: createTelemetry("ecr-anywhere-webhook"),
  });
  const object = managedSecret();
  const result = await webhook(
    webhookEvent({ clusterId, token, body: admissionReview({ object }) }),
    { awsRequestId: "r" },
  );
  const review = JSON.parse(result.body ?? "{}") as {
    response: { allowed: boolean; patch?: string; status?: { code: number; message: string } };
  };
  return { result, response: review.response, object };
}

describe("ECR Public", () => {
  it("has the SDK resolve ECR Public's API endpoint in us-east-1", async () => {
    const client = ecrPublicClientFor(undefined);
    expect(await client.config.region()).toBe("us-east-1");
    const resolved = client.config.endpointProvider({ Region: "us-east-1" });
    expect(resolved.url.hostname).toBe("api.ecr-public.us-east-1.amazonaws.com");
    client.destroy();
  });

  it("fills public.ecr.aws with ECR Public's token, as docker login writes it, beside a private registry", async () => {
    const { response, object } = await admit("public", plain.token);
    expect(response.allowed).toBe(true);
    const secret = applied(object, response);
    const auths = decodeDockerConfig(secret.data?.[".dockerconfigjson"]).auths;
    const password = ecr.lastPassword.get("public") ?? "";
    expect(password).toMatch(/^stand-in-public-/);
    expect(auths[PUBLIC]).toEqual({
      username: "AWS",
      password,
      auth: Buffer.from(`AWS:${password}`).toString("base64"),
    });
    expect(auths[EAST]?.password).toBe(ecr.lastPassword.get("us-east-1"));
    expect(auths[EAST]?.password).not.toBe(password);
    expect(
      ecr.calls
        .map(({ service, region, target }) => ({ service, region, target }))
        .sort((a, b) => a.service.localeCompare(b.service)),
    ).toEqual([
      {
        service: "ecr",
        region: "us-east-1",
        target: "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
      },
      {
        service: "ecr-public",
        region: "us-east-1",
        target: "SpencerFrontendService.GetAuthorizationToken",
      },
    ]);
    expect(secret.metadata?.annotations?.[names.expiresAtAnnotation]).toBeDefined();
  });

  it("mints under the cluster's role with a session policy granting ECR Public's token and nothing more", async () => {
    const { response } = await admit("public-narrowed", narrowed.token);
    expect(response.allowed).toBe(true);
    const [call] = ecr.calls;
    expect(call).toMatchObject({ service: "ecr-public", region: "us-east-1" });
    expect(call?.accessKeyId).toMatch(/^ASIA/); // the assumed role's session, not the function's keys
    const assumeRole = sts.bodies.find((body) => body.includes("Action=AssumeRole")) ?? "";
    const policy = JSON.parse(new URLSearchParams(assumeRole).get("Policy") ?? "{}") as {
      Statement: { Action: unknown; Condition?: unknown }[];
    };
    expect(policy.Statement.map((statement) => statement.Action)).toEqual([
      "ecr:GetAuthorizationToken",
      ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
      "ecr-public:GetAuthorizationToken",
      "sts:GetServiceBearerToken",
    ]);
    expect(policy.Statement[3]?.Condition).toEqual({
      StringEquals: { "sts:AWSServiceName": "ecr-public.amazonaws.com" },
    });
  });

  it("denies naming both permissions when ECR Public refuses", async () => {
    ecr.behaviour = "deny";
    const { response } = await admit("public", plain.token);
    expect(response.allowed).toBe(false);
    expect(response.status?.code).toBe(403);
    expect(response.status?.message).toContain(
      "AWS denied ecr-public:GetAuthorizationToken in us-east-1",
    );
    expect(response.status?.message).toContain(
      "allows ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken",
    );
  });
});
