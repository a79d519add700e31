/** `npm start`: the webhook served locally over HTTPS, from source or from the built bundle. */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import packageJson from "../../package.json" with { type: "json" };
import { buildLambdas } from "../../scripts/build.ts";
import { localAwsEnv, putClusterRecord } from "../../testbed/aws-env.ts";
import { type EcrStandIn, startEcrStandIn } from "../../testbed/ecr-stand-in.ts";
import { freePort, waitFor } from "../../testbed/ports.ts";
import { admissionReview, clusterRecord, newWebhookToken } from "../support/admission.ts";

const motoUrl = inject("motoUrl");
let ecr: EcrStandIn;
let distDir: string;
const cluster = newWebhookToken();

beforeAll(async () => {
  ecr = await startEcrStandIn();
  distDir = await mkdtemp(join(tmpdir(), "ecr-anywhere-local-"));
  await buildLambdas(distDir);
  await putClusterRecord(motoUrl, clusterRecord("local-demo", cluster.sha256));
});

afterAll(async () => {
  await ecr?.stop();
  await rm(distDir, { recursive: true, force: true });
});

async function startLocal(
  extraEnv: Record<string, string>,
): Promise<{ child: ChildProcess; stderr: () => string; stdout: () => string }> {
  let stderr = "";
  let stdout = "";
  const child = spawn(
    process.execPath,
    [join(import.meta.dirname, "../../functions/local/serve.ts")],
    {
      env: {
        PATH: process.env.PATH ?? "",
        ...localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: ecr.url }),
        ECR_ANYWHERE_LOCAL_PORT: String(await freePort()),
        ...extraEnv,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await waitFor(async () => stderr.includes("caBundle"), 20_000, "the local webhook to start");
  return { child, stderr: () => stderr, stdout: () => stdout };
}

async function admitThrough(
  stderr: string,
  path = `/v1/clusters/local-demo/${cluster.token}`,
  headers: Record<string, string> = {},
) {
  const url = /listening on (https:\/\/\S+)/.exec(stderr)?.[1] ?? "";
  const caFile = /caBundle \(base64\):\s+(\S+)/.exec(stderr)?.[1] ?? "";
  const ca = Buffer.from(await readFile(caFile, "utf8"), "base64").toString("utf8");
  const review = admissionReview();
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const call = request(
      `${url}${path}?timeout=10s`,
      { method: "POST", ca, headers: { "content-type": "application/json", ...headers } },
      (response) => {
        let body = "";
        response.on("data", (chunk: Buffer) => {
          body += chunk.toString();
        });
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      },
    );
    call.on("error", reject);
    call.end(JSON.stringify(review));
  });
  return { review, answer };
}

describe.each([
  ["source", () => ({})],
  ["the built bundle", () => ({ ECR_ANYWHERE_LOCAL_BUNDLE: join(distDir, "webhook/index.mjs") })],
])("npm start, serving %s", (what, env) => {
  it("answers a real admission over HTTPS with the CA it prints", async () => {
    const local = await startLocal(env());
    try {
      expect(local.stderr()).toContain(what === "source" ? "(source)" : "(bundle ");
      const before = ecr.callsIn("us-east-1");
      const { review, answer } = await admitThrough(local.stderr());
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body).response).toMatchObject({
        uid: review.request.uid,
        allowed: true,
        patchType: "JSONPatch",
      });
      expect(ecr.callsIn("us-east-1")).toBe(before + 1);
    } finally {
      local.child.kill("SIGTERM");
    }
  });

  it("answers GET /v1/health with static facts: the version, and whether a header arrived", async () => {
    const local = await startLocal(env());
    try {
      const none = await healthThrough(local.stderr(), {});
      expect(none.status).toBe(200);
      expect(JSON.parse(none.body)).toEqual({
        service: "ecr-anywhere-webhook",
        version: packageJson.version,
        authorizationHeaderReceived: false,
      });
      const valid = await healthThrough(local.stderr(), {
        authorization: `Bearer ${cluster.token}`,
      });
      const invalid = await healthThrough(local.stderr(), { authorization: "Bearer not-a-token" });
      expect(JSON.parse(valid.body).authorizationHeaderReceived).toBe(true);
      expect(invalid).toEqual(valid);
      expect(valid.body).not.toContain(cluster.token);
    } finally {
      local.child.kill("SIGTERM");
    }
  });
});

async function healthThrough(stderr: string, headers: Record<string, string>) {
  const url = /listening on (https:\/\/\S+)/.exec(stderr)?.[1] ?? "";
  const caFile = /caBundle \(base64\):\s+(\S+)/.exec(stderr)?.[1] ?? "";
  const ca = Buffer.from(await readFile(caFile, "utf8"), "base64").toString("utf8");
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const call = request(`${url}/v1/health`, { method: "GET", ca, headers }, (response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    call.on("error", reject);
    call.end();
  });
}

describe("npm start's output", () => {
  it("never carries a webhook token, a credential or Secret data, in URL or header mode", async () => {
    const local = await startLocal({});
    try {
      const stranger = newWebhookToken().token;
      expect((await admitThrough(local.stderr())).answer.status).toBe(200);
      const header = await admitThrough(local.stderr(), "/v1/clusters/local-demo", {
        authorization: `Bearer ${cluster.token}`,
      });
      expect(header.answer.status).toBe(200);
      const wrong = await admitThrough(local.stderr(), `/v1/clusters/local-demo/${stranger}`);
      expect(wrong.answer.status).toBe(403);
      await waitFor(
        // Warnings go to stderr, info lines to stdout.
        async () => `${local.stdout()}${local.stderr()}`.includes("webhook caller rejected"),
        10_000,
        "the rejection's log line",
      );
      const output = `${local.stdout()}\n${local.stderr()}`;
      expect(output).toContain('"message":"admission"');
      for (const secret of [
        cluster.token,
        stranger,
        ...ecr.lastPassword.values(),
        header.answer.body.length > 0
          ? (JSON.parse(header.answer.body).response.patch as string)
          : "",
      ]) {
        expect(secret).toBeTruthy();
        expect(output).not.toContain(secret);
      }
    } finally {
      local.child.kill("SIGTERM");
    }
  });
});
