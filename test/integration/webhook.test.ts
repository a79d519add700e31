/**
 * The webhook end to end through the real AWS SDK over HTTP: moto_server for DynamoDB (its record
 * table) and STS, the ECR stand-in for GetAuthorizationToken, fault servers where a failure is needed.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { createTelemetry } from "../../functions/telemetry.ts";
import { FORBIDDEN } from "../../functions/webhook/http.ts";
import { createWebhookFromEnv, type Webhook } from "../../functions/webhook/webhook.ts";
import { localAwsEnv, putClusterRecord } from "../../testbed/aws-env.ts";
import { type EcrStandIn, startEcrStandIn } from "../../testbed/ecr-stand-in.ts";
import {
  admissionReview,
  applied,
  decodeDockerConfig,
  managedSecret,
  names,
  newWebhookToken,
  webhookEvent,
} from "../support/admission.ts";
import { restoreEnv } from "../support/env.ts";
import {
  DYNAMODB_INTERNAL_ERROR,
  STS_ACCESS_DENIED,
  startFaultServer,
} from "../support/fault-server.ts";
import { type CapturedOutput, captureOutput } from "../support/output.ts";

const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const WEST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const HOUR = 3600_000;

const motoUrl = inject("motoUrl");
let ecr: EcrStandIn;
let output: CapturedOutput;
let baseEnv: Record<string, string>;
const savedEnv = { ...process.env };

const east = newWebhookToken();
const multi = newWebhookToken();
const rotating = { current: newWebhookToken(), next: newWebhookToken() };
const fenced = newWebhookToken();
const roleBound = newWebhookToken();
const KUBECONFIG =
  "apiVersion: v1\nkind: Config\nusers:\n- name: refresher\n  user:\n    token: kubeconfig-secret-token-value\n";

function record(clusterId: string, sha256: string[], extra: Record<string, unknown> = {}) {
  return {
    clusterId,
    kubeconfig: KUBECONFIG,
    webhookTokenSha256: sha256,
    registries: [EAST],
    ...extra,
  };
}

beforeAll(async () => {
  ecr = await startEcrStandIn();
  baseEnv = localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: ecr.url });
  await Promise.all([
    putClusterRecord(motoUrl, record("east", [east.sha256])),
    putClusterRecord(motoUrl, record("multi", [multi.sha256], { registries: [EAST, WEST] })),
    putClusterRecord(motoUrl, record("rotating", [rotating.current.sha256, rotating.next.sha256])),
    putClusterRecord(
      motoUrl,
      record("fenced", [fenced.sha256], { allowedSourceCidrs: ["203.0.113.0/24"] }),
    ),
    putClusterRecord(
      motoUrl,
      record("role-bound", [roleBound.sha256], {
        roleArn: "arn:aws:iam::123456789012:role/ecr-pull-role-bound",
        repositories: ["arn:aws:ecr:us-east-1:123456789012:repository/team-a/*"],
      }),
    ),
    putClusterRecord(motoUrl, { layout: 7, clusterId: "future" }),
  ]);
});

afterAll(async () => {
  await ecr.stop();
});

beforeEach(() => {
  ecr.reset();
  Object.assign(process.env, baseEnv);
  output = captureOutput();
});

afterEach(() => {
  output.restore();
  restoreEnv(savedEnv);
});

function fakeClock(start = Date.now()) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

function webhook(env: Record<string, string> = {}, now: () => number = Date.now): Webhook {
  Object.assign(process.env, env);
  return createWebhookFromEnv(process.env, {
    now,
    telemetry: createTelemetry("ecr-anywhere-webhook"),
  });
}

async function admit(
  handler: Webhook,
  clusterId: string,
  token: string,
  object: unknown = managedSecret(),
  extra = {},
) {
  const review = admissionReview({ object, ...extra });
  const result = await handler(webhookEvent({ clusterId, token, body: review }));
  const body = JSON.parse(result.body ?? "{}");
  return { review, status: result.statusCode, body, response: body.response };
}

describe("webhook over the real AWS SDK", () => {
  it("writes fresh ECR credentials and the contract's annotations into a managed Secret", async () => {
    const clock = fakeClock(Date.UTC(2026, 10, 22, 11, 0, 0));
    ecr.now = clock.now;
    const handler = webhook({}, clock.now);
    const object = managedSecret();
    const { status, body, response, review } = await admit(handler, "east", east.token, object);

    expect(status).toBe(200);
    expect(body).toMatchObject({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" });
    expect(response).toMatchObject({
      uid: review.request.uid,
      allowed: true,
      patchType: "JSONPatch",
    });
    const stored = applied(object, response);
    const password = ecr.lastPassword.get("us-east-1");
    expect(decodeDockerConfig(stored.data?.[".dockerconfigjson"])).toEqual({
      auths: {
        [EAST]: {
          username: "AWS",
          password,
          auth: Buffer.from(`AWS:${password}`).toString("base64"),
        },
      },
    });
    expect(stored.metadata?.annotations).toEqual({
      [names.expiresAtAnnotation]: "2026-11-22T23:00:00Z",
      [names.updatedAtAnnotation]: "2026-11-22T11:00:00Z",
    });
    expect(output.metric("Admissions")).toBe(1);
    expect(output.metric("Mutations")).toBe(1);
    expect(output.metric("TokenFetches")).toBe(1);
  });

  it("makes one ECR call per region per token lifetime, however many admissions", async () => {
    const clock = fakeClock();
    ecr.now = clock.now;
    const handler = webhook({}, clock.now);
    for (let i = 0; i < 20; i++)
      expect((await admit(handler, "multi", multi.token)).response.allowed).toBe(true);
    expect(ecr.callsIn("us-east-1")).toBe(1);
    expect(ecr.callsIn("eu-west-1")).toBe(1);
    expect(output.metric("TokenCacheHits")).toBe(38);

    clock.advance(6 * HOUR - 1000); // still more than half of the 12 h token left
    await admit(handler, "multi", multi.token);
    expect(ecr.calls).toHaveLength(2);
    clock.advance(2000); // half the lifetime gone: a fresh token, so Secrets never get a tired one
    await admit(handler, "multi", multi.token);
    expect(ecr.callsIn("us-east-1")).toBe(2);
    expect(ecr.callsIn("eu-west-1")).toBe(2);
  });

  it("shares one ECR call per region between 50 concurrent cold admissions", async () => {
    const handler = webhook();
    ecr.latencyMs = 50;
    const results = await Promise.all(
      Array.from({ length: 50 }, () => admit(handler, "multi", multi.token)),
    );
    expect(results.every((result) => result.response.allowed && result.response.patch)).toBe(true);
    expect(ecr.callsIn("us-east-1")).toBe(1);
    expect(ecr.callsIn("eu-west-1")).toBe(1);
  });

  it("writes one entry per registry, one token per region, and the earliest expiry", async () => {
    const clock = fakeClock(Date.UTC(2026, 10, 22, 11, 0, 0));
    ecr.now = clock.now;
    const handler = webhook({}, clock.now);
    const object = managedSecret({
      data: {
        ".dockerconfigjson": Buffer.from(
          JSON.stringify({ auths: { "ghcr.io": { auth: "dXNlcjpwYXNz" } } }),
        ).toString("base64"),
        "other-key": "dmFsdWU=",
      },
    });
    const { response } = await admit(handler, "multi", multi.token, object);
    const stored = applied(object, response);
    const config = decodeDockerConfig(stored.data?.[".dockerconfigjson"]);
    expect(Object.keys(config.auths).sort()).toEqual([WEST, EAST, "ghcr.io"].sort());
    expect(config.auths[EAST]?.password).toBe(ecr.lastPassword.get("us-east-1"));
    expect(config.auths[WEST]?.password).toBe(ecr.lastPassword.get("eu-west-1"));
    expect(config.auths["ghcr.io"]).toEqual({ auth: "dXNlcjpwYXNz" });
    expect(stored.data?.["other-key"]).toBe("dmFsdWU=");
    expect(ecr.calls).toHaveLength(2);
  });

  it("denies with an actionable message when ECR throttles, inside the deadline", async () => {
    const handler = webhook({ ECR_ANYWHERE_ADMISSION_BUDGET_MS: "8000" });
    ecr.behaviour = "throttle";
    const started = Date.now();
    const { status, response } = await admit(handler, "east", east.token);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(status).toBe(200);
    expect(response).toMatchObject({
      allowed: false,
      status: {
        code: 429,
        message: expect.stringContaining("ECR is throttling GetAuthorizationToken in us-east-1"),
      },
    });
    expect(ecr.calls.length).toBeGreaterThanOrEqual(1);
    // One total the alarm watches, without ClusterId; the admission log line names the cluster.
    expect(output.metric("Denials")).toBe(1);
    const total = output.json().find((line) => line.Denials !== undefined);
    expect(total).toMatchObject({ service: "ecr-anywhere-webhook", Denials: 1 });
    expect(total).not.toHaveProperty("ClusterId");
    expect(output.json().find((line) => line.message === "admission")).toMatchObject({
      clusterId: "east",
      outcome: "denied",
    });
    expect(output.metric("TokenFetchErrors")).toBe(1);
  });

  it("denies with AWS's reason when ECR refuses access", async () => {
    const handler = webhook();
    ecr.behaviour = "deny";
    const { response } = await admit(handler, "east", east.token);
    expect(response.allowed).toBe(false);
    expect(response.status.code).toBe(403);
    expect(response.status.message).toContain(
      "AWS denied ecr:GetAuthorizationToken in us-east-1 (AccessDeniedException)",
    );
    expect(response.status.message).toContain("Check that the IAM policy");
  });

  it("answers inside its budget when ECR stalls", async () => {
    const handler = webhook({ ECR_ANYWHERE_ADMISSION_BUDGET_MS: "1500" });
    ecr.latencyMs = 20_000;
    const started = Date.now();
    const { status, response } = await admit(handler, "east", east.token);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(3000);
    expect(status).toBe(200);
    expect(response).toMatchObject({
      allowed: false,
      status: { code: 504, message: expect.stringContaining("timed out") },
    });
  });

  it("mints through the cluster's role: expiry is capped by the STS session, ECR sees the role's keys", async () => {
    // Real time: moto's STS session is measured from it, and must end before the 12 h ECR token.
    const clock = fakeClock();
    ecr.now = clock.now;
    const handler = webhook({}, clock.now);
    const object = managedSecret();
    const { response } = await admit(handler, "role-bound", roleBound.token, object);
    expect(response.allowed).toBe(true);
    const expiresAt = Date.parse(
      applied(object, response).metadata?.annotations?.[names.expiresAtAnnotation] ?? "",
    );
    // moto's session lasts the requested hour from real time; the ECR token would last 12 h.
    expect(expiresAt).toBeLessThan(Date.now() + HOUR + 60_000);
    expect(expiresAt).toBeGreaterThan(Date.now() + HOUR - 60_000);
    expect(ecr.calls[0]?.accessKeyId).not.toBe(baseEnv.AWS_ACCESS_KEY_ID);
    expect(ecr.calls[0]?.accessKeyId).toMatch(/^ASIA/);
  });

  it("denies with the role and what to check when STS refuses AssumeRole", async () => {
    const sts = await startFaultServer(STS_ACCESS_DENIED);
    try {
      const handler = webhook({ AWS_ENDPOINT_URL_STS: sts.url });
      const { response } = await admit(handler, "role-bound", roleBound.token);
      expect(response.allowed).toBe(false);
      expect(response.status.code).toBe(403);
      expect(response.status.message).toContain(
        "cannot assume role arn:aws:iam::123456789012:role/ecr-pull-role-bound",
      );
      expect(response.status.message).toContain("trust policy");
      expect(ecr.calls).toHaveLength(0);
    } finally {
      await sts.stop();
    }
  });

  it("answers 503, never a crash, when its record table fails", async () => {
    const dynamodb = await startFaultServer(DYNAMODB_INTERNAL_ERROR);
    try {
      const handler = webhook({
        AWS_ENDPOINT_URL_DYNAMODB: dynamodb.url,
        AWS_MAX_ATTEMPTS: "2",
      });
      const result = await handler(
        webhookEvent({ clusterId: "east", token: east.token, body: admissionReview() }),
      );
      expect(result.statusCode).toBe(503);
      expect(JSON.parse(result.body ?? "")).toMatchObject({
        kind: "Status",
        code: 503,
        message: "Service Unavailable",
      });
      expect(dynamodb.requests).toBe(2);
      expect(
        output.json().filter((line) => line.message === "cannot read the cluster record"),
      ).toHaveLength(1);
    } finally {
      await dynamodb.stop();
    }
  });

  it("rejects unknown clusters, wrong tokens, invalid records and outside addresses alike: 403, no detail", async () => {
    const handler = webhook();
    const review = admissionReview();
    const attempts = [
      webhookEvent({ clusterId: "nobody", token: east.token, body: review }),
      webhookEvent({ clusterId: "east", token: multi.token, body: review }),
      webhookEvent({ clusterId: "future", token: east.token, body: review }),
      webhookEvent({
        clusterId: "fenced",
        token: fenced.token,
        body: review,
        sourceIp: "198.51.100.7",
      }),
      {
        ...webhookEvent({ clusterId: "east", token: east.token, body: review }),
        rawPath: "/v1/clusters/east",
      },
    ];
    for (const event of attempts) {
      const result = await handler(event);
      expect(result.statusCode).toBe(403);
      expect(result.body).toBe(FORBIDDEN.body);
      expect(JSON.parse(result.body ?? "")).toMatchObject({
        kind: "Status",
        code: 403,
        message: "Forbidden",
      });
    }
    expect(output.metric("AuthFailures")).toBe(attempts.length);
    expect(output.text()).toContain("unsupported cluster record layout 7");
    expect(ecr.calls).toHaveLength(0);
  });

  it("refuses an offboarded cluster as unknown: 403, charged to the source's budget, never 503", async () => {
    const gone = newWebhookToken();
    await putClusterRecord(motoUrl, {
      ...record("offboarded", [gone.sha256]),
      deletedAt: Date.now(),
      expiresAt: Math.floor(Date.now() / 1000) + 7 * 86_400,
    });
    const handler = webhook();
    for (let call = 0; call < 30; call++)
      expect((await admit(handler, "offboarded", gone.token)).status).toBe(403);
    const rejected = output
      .json()
      .filter(
        (line) => line.message === "webhook caller rejected" && line.clusterId === "offboarded",
      );
    expect(rejected).toHaveLength(30);
    expect(rejected[0]).toMatchObject({ reason: "unknown-cluster" });
    // A stranger like any other: its source is refused for the rest of the minute.
    expect(output.text()).toContain("source address refused for the rest of the minute");
  });

  it("accepts both tokens during rotation, and addresses inside the allowed CIDRs", async () => {
    const handler = webhook();
    expect((await admit(handler, "rotating", rotating.current.token)).response.allowed).toBe(true);
    expect((await admit(handler, "rotating", rotating.next.token)).response.allowed).toBe(true);
    const inside = await handler(
      webhookEvent({
        clusterId: "fenced",
        token: fenced.token,
        body: admissionReview(),
        sourceIp: "203.0.113.200",
      }),
    );
    expect(inside.statusCode).toBe(200);
  });

  it("stops accepting a revoked token once the record cache TTL has passed", async () => {
    const clock = fakeClock();
    const revocable = newWebhookToken();
    await putClusterRecord(motoUrl, record("revocable", [revocable.sha256]));
    const handler = webhook({ ECR_ANYWHERE_RECORD_TTL_SECONDS: "60" }, clock.now);
    expect((await admit(handler, "revocable", revocable.token)).status).toBe(200);
    await putClusterRecord(motoUrl, record("revocable", [newWebhookToken().sha256]));
    clock.advance(59_000);
    expect((await admit(handler, "revocable", revocable.token)).status).toBe(200);
    clock.advance(2_000);
    expect((await admit(handler, "revocable", revocable.token)).status).toBe(403);
  });

  it("handles base64 bodies, dry runs, and malformed or oversized input without a 5xx", async () => {
    const handler = webhook({ ECR_ANYWHERE_MAX_BODY_BYTES: "65536" });
    const review = admissionReview({ dryRun: true });
    const base64 = await handler(
      webhookEvent({ clusterId: "east", token: east.token, body: review, base64: true }),
    );
    expect(base64.statusCode).toBe(200);
    expect(JSON.parse(base64.body ?? "").response).toMatchObject({
      uid: review.request.uid,
      allowed: true,
      patchType: "JSONPatch",
    });

    const malformed = await handler(
      webhookEvent({ clusterId: "east", token: east.token, body: '{"kind":"AdmissionReview"' }),
    );
    expect(malformed.statusCode).toBe(400);
    const wrongShape = await handler(
      webhookEvent({ clusterId: "east", token: east.token, body: { apiVersion: "v1" } }),
    );
    expect(wrongShape.statusCode).toBe(400);
    expect(JSON.parse(wrongShape.body ?? "").message).toContain("apiVersion");
    expect(JSON.parse(wrongShape.body ?? "").message).toContain("request: missing");
    const huge = await handler(
      webhookEvent({ clusterId: "east", token: east.token, body: "x".repeat(70_000) }),
    );
    expect(huge.statusCode).toBe(413);
    const get = await handler(
      webhookEvent({ clusterId: "east", token: east.token, body: "", method: "GET" }),
    );
    expect(get.statusCode).toBe(405);
    expect(output.json().filter((line) => line.message === "malformed request")).toHaveLength(4);
    expect(output.text()).not.toContain("No application metrics");
  });

  it("allows unmanaged Secrets untouched and denies a managed Secret of the wrong type", async () => {
    const handler = webhook();
    const unmanaged = await admit(handler, "east", east.token, {
      ...managedSecret(),
      metadata: { name: "x", namespace: "apps" },
    });
    expect(unmanaged.response).toEqual({ uid: unmanaged.review.request.uid, allowed: true });
    const opaque = await admit(handler, "east", east.token, managedSecret({ type: "Opaque" }));
    expect(opaque.response).toMatchObject({
      allowed: false,
      status: { code: 400, message: expect.stringContaining("kubernetes.io/dockerconfigjson") },
    });
    expect(ecr.calls).toHaveLength(0);
  });

  it("never logs credentials, tokens, kubeconfigs or Secret data", async () => {
    const handler = webhook();
    const userData = Buffer.from("user-secret-bytes-0123456789").toString("base64");
    const { response } = await admit(
      handler,
      "multi",
      multi.token,
      managedSecret({ data: { ".dockerconfigjson": userData } }),
    );
    await admit(handler, "east", multi.token);
    ecr.behaviour = "deny";
    const denied = await admit(webhook(), "rotating", rotating.current.token);
    expect(denied.response.allowed).toBe(false);
    await handler(
      webhookEvent({
        clusterId: "east",
        token: east.token,
        body: { apiVersion: "v1", secret: userData },
      }),
    );

    const logged = output.text();
    expect(output.lines.length).toBeGreaterThan(5);
    const secrets = [
      ...ecr.lastPassword.values(),
      ...[...ecr.lastPassword.values()].map((password) =>
        Buffer.from(`AWS:${password}`).toString("base64"),
      ),
      multi.token,
      east.token,
      rotating.current.token,
      "kubeconfig-secret-token-value",
      userData,
      response.patch,
      baseEnv.AWS_SECRET_ACCESS_KEY,
    ];
    for (const secret of secrets) {
      expect(secret).toBeTruthy();
      expect(logged).not.toContain(secret);
    }
  });
});
