/** `npm start`: the webhook served locally over HTTPS answers a real admission request. */
import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { admissionReview, newWebhookToken } from "../support/admission.ts";
import { localAwsEnv, putClusterRecord } from "../support/aws-env.ts";
import { type EcrStandIn, startEcrStandIn } from "../support/ecr-stand-in.ts";
import { freePort, waitFor } from "../support/ports.ts";

const motoUrl = inject("motoUrl");
let ecr: EcrStandIn;
let child: ChildProcess;
let stderr = "";
const cluster = newWebhookToken();

beforeAll(async () => {
  ecr = await startEcrStandIn();
  await putClusterRecord(motoUrl, {
    version: 1,
    clusterId: "local-demo",
    kubeconfig: "apiVersion: v1\nkind: Config\n",
    webhookTokenSha256: [cluster.sha256],
    registries: ["123456789012.dkr.ecr.us-east-1.amazonaws.com"],
  });
  const port = await freePort();
  child = spawn(process.execPath, [join(import.meta.dirname, "../../functions/local/serve.ts")], {
    env: {
      PATH: process.env.PATH ?? "",
      ...localAwsEnv({ secretsManager: motoUrl, sts: motoUrl, ecr: ecr.url }),
      ECR_ANYWHERE_LOCAL_PORT: String(port),
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await waitFor(async () => stderr.includes("caBundle"), 20_000, "the local webhook to start");
});

afterAll(async () => {
  child?.kill("SIGTERM");
  await ecr?.stop();
});

it("serves the webhook over HTTPS with the CA it prints", async () => {
  const url = /listening on (https:\/\/\S+)/.exec(stderr)?.[1] ?? "";
  const caFile = /caBundle \(base64\):\s+(\S+)/.exec(stderr)?.[1] ?? "";
  const ca = Buffer.from(await readFile(caFile, "utf8"), "base64").toString("utf8");
  const review = admissionReview();
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const call = request(
      `${url}/v1/clusters/local-demo/${cluster.token}?timeout=10s`,
      { method: "POST", ca, headers: { "content-type": "application/json" } },
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
  expect(answer.status).toBe(200);
  expect(JSON.parse(answer.body).response).toMatchObject({
    uid: review.request.uid,
    allowed: true,
    patchType: "JSONPatch",
  });
  expect(ecr.callsIn("us-east-1")).toBe(1);
});
