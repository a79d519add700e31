/**
 * The webhook's outer guard: whatever a step did not expect (a dependency throwing something that
 * is not even an Error, telemetry failing) is answered with a logged 500 naming the request, never
 * a rejected invocation, and the log line carries no token.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ClusterRecord } from "../../functions/core/cluster-record.ts";
import { webhookConfigFromEnv } from "../../functions/core/config.ts";
import type { EcrToken } from "../../functions/core/tokens.ts";
import { SourceBudget } from "../../functions/lib/source-budget.ts";
import { createTelemetry } from "../../functions/telemetry.ts";
import { createWebhook, type WebhookDependencies } from "../../functions/webhook/webhook.ts";
import { admissionReview, newWebhookToken, webhookEvent } from "../support/admission.ts";
import { type CapturedOutput, captureOutput } from "../support/output.ts";

const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const caller = newWebhookToken();
const record = {
  clusterId: "gke-prod",
  kubeconfig: "apiVersion: v1\nkind: Config\n",
  webhookTokenSha256: [caller.sha256],
  registries: [EAST],
} as ClusterRecord;
const token: EcrToken = {
  kind: "ecr",
  region: "us-east-1",
  fips: false,
  username: "AWS",
  password: "ecr-password-never-logged",
  expiresAtMs: Date.now() + 3600_000,
};

let output: CapturedOutput;
beforeEach(() => {
  output = captureOutput();
});
afterEach(() => {
  output.restore();
});

function dependencies(overrides: Partial<WebhookDependencies> = {}): WebhookDependencies {
  return {
    config: webhookConfigFromEnv({}),
    now: Date.now,
    telemetry: createTelemetry("ecr-anywhere-webhook"),
    records: {
      lookup: async () => ({ value: { found: true, record }, source: "cache" }),
      isKnown: () => true,
    },
    tokens: {
      kinds: [],
      tokenFor: async () => ({ token, source: "cache" }),
    },
    ...overrides,
  };
}

async function call(deps: WebhookDependencies, requestId = "req-42") {
  const webhook = createWebhook(deps);
  const result = await webhook(
    webhookEvent({ clusterId: "gke-prod", token: caller.token, body: admissionReview() }),
    { awsRequestId: requestId },
  );
  return { result, body: JSON.parse(String(result.body)) };
}

function expectLoggedInternalError(requestId: string, error: string) {
  const line = output.json().find((entry) => entry.message === "request failed unexpectedly");
  expect(line).toMatchObject({ level: "ERROR", requestId, error });
  expect(output.text()).not.toContain(caller.token);
  expect(output.text()).not.toContain(token.password);
}

describe("an error no step expected", () => {
  it("from a dependency throwing a non-Error: a 500 naming the request, and a log line", async () => {
    // A source past its budget asks the record store whether the cluster exists: that call is not
    // guarded by any step.
    const sources = new SourceBudget({
      failuresPerWindow: 1,
      windowMs: 60_000,
      maxSources: 10,
      now: Date.now,
    });
    sources.failed("203.0.113.10");
    const deps = dependencies({
      sources,
      records: {
        lookup: async () => ({ value: { found: true, record }, source: "cache" }),
        isKnown: () => {
          throw "the store is broken";
        },
      },
    });
    const { result, body } = await call(deps, "req-1");
    expect(result.statusCode).toBe(500);
    expect(body).toMatchObject({
      kind: "Status",
      status: "Failure",
      code: 500,
      message: "ecr-anywhere: internal error (request req-1); see the webhook's logs",
    });
    expectLoggedInternalError("req-1", "unknown error");
  });

  it("from telemetry failing in a step: a 500 too, never a rejected invocation", async () => {
    const telemetry = createTelemetry("ecr-anywhere-webhook");
    const addMetric = telemetry.metrics.addMetric.bind(telemetry.metrics);
    vi.spyOn(telemetry.metrics, "addMetric").mockImplementation((name, ...rest) => {
      if (name === "Admissions") throw new RangeError("metrics are full");
      return addMetric(name, ...rest);
    });
    const { result, body } = await call(dependencies({ telemetry }), "req-2");
    expect(result.statusCode).toBe(500);
    expect(body.message).toBe(
      "ecr-anywhere: internal error (request req-2); see the webhook's logs",
    );
    expectLoggedInternalError("req-2", "RangeError: metrics are full");
  });

  it("leaves expected failures their own answers", async () => {
    const { result, body } = await call(
      dependencies({
        records: {
          lookup: () => Promise.reject("not an Error either"),
          isKnown: () => false,
        },
      }),
    );
    expect(result.statusCode).toBe(503);
    expect(body.message).toBe("Service Unavailable");
    expect(output.json().map((entry) => entry.message)).toContain("cannot read the cluster record");
  });
});
