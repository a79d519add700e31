/** The built webhook artifact, alone in an empty directory, answers an admission on Node 24. */
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { buildLambdas } from "../../scripts/build.ts";
import { admissionReview, newWebhookToken, patchOf, webhookEvent } from "../support/admission.ts";
import { localAwsEnv, putClusterRecord } from "../support/aws-env.ts";
import { type EcrStandIn, startEcrStandIn } from "../support/ecr-stand-in.ts";

const motoUrl = inject("motoUrl");
let ecr: EcrStandIn;
let workDir: string;
const cluster = newWebhookToken();

beforeAll(async () => {
  ecr = await startEcrStandIn();
  workDir = await mkdtemp(join(tmpdir(), "ecr-anywhere-bundle-"));
  await buildLambdas(join(workDir, "dist"));
  await putClusterRecord(motoUrl, {
    version: 1,
    clusterId: "bundle",
    kubeconfig: "apiVersion: v1\nkind: Config\n",
    webhookTokenSha256: [cluster.sha256],
    registries: ["123456789012.dkr.ecr.us-east-1.amazonaws.com"],
  });
});

afterAll(async () => {
  await ecr.stop();
  await rm(workDir, { recursive: true, force: true });
});

it("runs from an empty directory with no node_modules", async () => {
  const lonely = join(workDir, "lambda");
  await mkdir(lonely);
  await copyFile(join(workDir, "dist/webhook/index.mjs"), join(lonely, "index.mjs"));
  expect(await readdir(lonely)).toEqual(["index.mjs"]);

  const review = admissionReview();
  const event = webhookEvent({ clusterId: "bundle", token: cluster.token, body: review });
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ["scripts/invoke-bundle.ts", join(lonely, "index.mjs")],
      {
        // Only what Lambda would set: no NODE_PATH, no inherited module paths.
        env: {
          PATH: process.env.PATH ?? "",
          ...localAwsEnv({ secretsManager: motoUrl, sts: motoUrl, ecr: ecr.url }),
        },
        timeout: 20_000,
      },
      (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
    );
    child.stdin?.end(JSON.stringify([event]));
  });
  expect(process.versions.node.split(".")[0]).toBe("24");
  const report = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
  const result = report.invocations[0].result;
  expect(result.statusCode).toBe(200);
  const response = JSON.parse(result.body).response;
  expect(response).toMatchObject({
    uid: review.request.uid,
    allowed: true,
    patchType: "JSONPatch",
  });
  expect(patchOf(response)).toHaveLength(2);
  expect(ecr.callsIn("us-east-1")).toBe(1);
});
