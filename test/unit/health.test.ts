/**
 * The webhook's health path through the whole handler, with dependencies that fail if touched:
 * it reads no record and no token, spends no failure budget, logs nothing, and answers the same
 * for a valid token, an invalid one and none but for one boolean.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { webhookConfigFromEnv } from "../../functions/core/config.ts";
import { answerHealth, HEALTH_PATH } from "../../functions/core/health.ts";
import { SourceBudget } from "../../functions/lib/source-budget.ts";
import { toFunctionUrlEvent } from "../../functions/local/function-url-event.ts";
import { createTelemetry } from "../../functions/telemetry.ts";
import { createWebhook } from "../../functions/webhook/webhook.ts";
import packageJson from "../../package.json" with { type: "json" };
import { newWebhookToken } from "../support/admission.ts";
import { type CapturedOutput, captureOutput } from "../support/output.ts";

const untouched = (what: string) => () => {
  throw new Error(`${what} was called`);
};

let output: CapturedOutput;
beforeEach(() => {
  output = captureOutput();
});
afterEach(() => {
  output.restore();
});

const sources = new SourceBudget({
  failuresPerWindow: 1,
  windowMs: 60_000,
  maxSources: 10,
  now: Date.now,
});
const webhook = createWebhook({
  config: webhookConfigFromEnv({}),
  now: Date.now,
  telemetry: createTelemetry("ecr-anywhere-webhook"),
  sources,
  records: { lookup: untouched("records.lookup"), isKnown: untouched("records.isKnown") },
  tokens: { kinds: [], tokenFor: untouched("tokens.tokenFor") },
});

const health = (headers: Record<string, string>, method = "GET", url = HEALTH_PATH) =>
  webhook(
    toFunctionUrlEvent({ method, url, headers, body: Buffer.alloc(0), sourceIp: "198.51.100.7" }),
  );

describe("GET /v1/health", () => {
  it("answers static facts without reading a record, a token or the failure budget", async () => {
    const token = newWebhookToken().token;
    const none = await health({});
    const withToken = await health({ authorization: `Bearer ${token}` });
    const garbage = await health({ authorization: "Basic Zm9vOmJhcg==" });
    expect(none).toMatchObject({ statusCode: 200, headers: { "cache-control": "no-store" } });
    expect(JSON.parse(String(none.body))).toEqual({
      service: "ecr-anywhere-webhook",
      version: packageJson.version,
      authorizationHeaderReceived: false,
    });
    expect(JSON.parse(String(withToken.body)).authorizationHeaderReceived).toBe(true);
    expect(garbage).toEqual(withToken);
    expect(sources.exhausted("198.51.100.7")).toBe(false);
    expect(output.text()).toBe("");
  });

  it("refuses other methods, and leaves every other path to the pipeline", async () => {
    expect((await health({}, "POST")).statusCode).toBe(405);
    expect(
      answerHealth(
        { method: "GET", rawPath: "/v1/health/", authorizationHeaderPresent: false },
        "1",
      ),
    ).toBeUndefined();
    expect(
      answerHealth(
        { method: "GET", rawPath: "/v1/clusters/health", authorizationHeaderPresent: false },
        "1",
      ),
    ).toBeUndefined();
  });
});
