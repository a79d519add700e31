/** The built webhook artifact, alone in an empty directory, answers an admission on Node 24. */
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { DynamoBrokerKeyStore } from "../../functions/adapters/broker-key-store.ts";
import { IamAccessKeys, IamQueryClient } from "../../functions/adapters/iam-access-keys.ts";
import { toFunctionUrlEvent } from "../../functions/local/function-url-event.ts";
import { EcrAnywhereStack } from "../../infra/stack.ts";
import packageJson from "../../package.json" with { type: "json" };
import { buildLambdas } from "../../scripts/build.ts";
import {
  createTokenTable,
  localAwsEnv,
  putClusterRecord,
  recordTablesEnv,
} from "../../testbed/aws-env.ts";
import { type EcrStandIn, startEcrStandIn } from "../../testbed/ecr-stand-in.ts";
import { SCHEDULED_EVENT, startLambdaStandIn } from "../../testbed/lambda-stand-in.ts";
import { freePort } from "../../testbed/ports.ts";
import {
  admissionReview,
  clusterRecord,
  newWebhookToken,
  patchOf,
  webhookEvent,
} from "../support/admission.ts";

const motoUrl = inject("motoUrl");
let ecr: EcrStandIn;
let workDir: string;
const cluster = newWebhookToken();

beforeAll(async () => {
  ecr = await startEcrStandIn();
  workDir = await mkdtemp(join(tmpdir(), "ecr-anywhere-bundle-"));
  await buildLambdas(join(workDir, "dist"));
  await putClusterRecord(motoUrl, clusterRecord("bundle", cluster.sha256));
});

afterAll(async () => {
  await ecr.stop();
  await rm(workDir, { recursive: true, force: true });
});

async function invokeAlone(bundle: string, events: unknown[], env: Record<string, string> = {}) {
  const lonely = await mkdtemp(join(workDir, "lambda-"));
  await copyFile(
    bundle.startsWith("/") ? bundle : join(workDir, "dist", bundle, "index.mjs"),
    join(lonely, "index.mjs"),
  );
  expect(await readdir(lonely)).toEqual(["index.mjs"]);
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = execFile(
        process.execPath,
        ["scripts/invoke-bundle.ts", join(lonely, "index.mjs")],
        {
          // Only what Lambda would set: no NODE_PATH, no inherited module paths.
          env: {
            PATH: process.env.PATH ?? "",
            ...localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: ecr.url }),
            ...env,
          },
          timeout: 30_000,
        },
        (error, out, err) =>
          error
            ? reject(new Error(`${error.message}\n${err}`))
            : resolve({ stdout: out, stderr: err }),
      );
      child.stdin?.end(JSON.stringify(events));
    },
  );
  const lines = stdout.trim().split("\n");
  return {
    report: JSON.parse(lines.at(-1) ?? "{}"),
    output: `${lines.slice(0, -1).join("\n")}\n${stderr}`,
  };
}

it("the refresher bundle loads the Kubernetes client and reports an unreachable cluster by name", async () => {
  const closed = await freePort();
  await putClusterRecord(
    motoUrl,
    {
      clusterId: "bundle-down",
      kubeconfig: kubeconfigFor(`https://127.0.0.1:${closed}`),
      webhookTokenSha256: [cluster.sha256],
      registries: ["123456789012.dkr.ecr.us-east-1.amazonaws.com"],
    },
    { records: "bundle-refresher" },
  );
  const { report, output } = await invokeAlone(
    "refresher",
    [SCHEDULED_EVENT],
    recordTablesEnv("bundle-refresher"),
  );
  expect(report.invocations[0].error).toMatch(/^refresh failed for 1 cluster\(s\): bundle-down;/);
  expect(output).toContain("ECONNREFUSED");
});

it("the Lambda stand-in invokes the refresher bundle as Lambda does: a one-cluster answer, or an Unhandled function error", async () => {
  const closed = await freePort();
  await putClusterRecord(
    motoUrl,
    {
      clusterId: "bundle-one",
      kubeconfig: kubeconfigFor(`https://127.0.0.1:${closed}`),
      webhookTokenSha256: [cluster.sha256],
      registries: ["123456789012.dkr.ecr.us-east-1.amazonaws.com"],
    },
    { records: "bundle-one" },
  );
  const env = localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: ecr.url });
  const lambda = await startLambdaStandIn({
    "ecr-anywhere-refresher": {
      bundle: join(workDir, "dist/refresher/index.mjs"),
      env: { ...env, ...recordTablesEnv("bundle-one") },
    },
  });
  const client = new LambdaClient({
    endpoint: lambda.url,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIAEXAMPLE", secretAccessKey: "x" },
  });
  const invoke = async (FunctionName: string, event: unknown) => {
    const answer = await client.send(
      new InvokeCommand({ FunctionName, Payload: new TextEncoder().encode(JSON.stringify(event)) }),
    );
    return {
      functionError: answer.FunctionError,
      body: JSON.parse(new TextDecoder().decode(answer.Payload)),
    };
  };
  try {
    const one = await invoke("ecr-anywhere-refresher", { clusterId: "bundle-one" });
    expect(one.functionError).toBeUndefined();
    expect(one.body).toMatchObject({
      mode: "one-cluster",
      report: { clusterId: "bundle-one", ok: false },
    });
    expect(one.body.report.problems.join("\n")).toContain("ECONNREFUSED");
    // By ARN too, and a refused event is the handler's error, as Lambda reports one.
    const refused = await invoke(
      "arn:aws:lambda:us-east-1:123456789012:function:ecr-anywhere-refresher",
      { everything: true },
    );
    expect(refused.functionError).toBe("Unhandled");
    expect(refused.body).toEqual({
      errorType: "Error",
      errorMessage: expect.stringMatching(/^refresher event refused: expected EventBridge/),
      trace: [],
    });
    await expect(invoke("no-such-function", {})).rejects.toThrow(/Function not found/);
    expect(lambda.invocations.map((call) => call.event)).toEqual([
      { clusterId: "bundle-one" },
      { everything: true },
    ]);
  } finally {
    client.destroy();
    await lambda.stop();
  }
});

it("the webhook bundle runs from an empty directory with no node_modules and answers an admission", async () => {
  const review = admissionReview();
  const event = webhookEvent({ clusterId: "bundle", token: cluster.token, body: review });
  const { report } = await invokeAlone("webhook", [event]);
  expect(process.versions.node.split(".")[0]).toBe("24");
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

it("the webhook bundle answers its health path with its version, and whether a header arrived, alone", async () => {
  const health = (headers: Record<string, string>, method = "GET") =>
    toFunctionUrlEvent({
      method,
      url: "/v1/health",
      headers,
      body: Buffer.alloc(0),
      sourceIp: "203.0.113.10",
    });
  const stranger = newWebhookToken().token;
  const { report, output } = await invokeAlone("webhook", [
    health({}),
    health({ authorization: `Bearer ${cluster.token}` }),
    health({ authorization: `Bearer ${stranger}` }),
    health({}, "POST"),
  ]);
  const [none, valid, invalid, post] = report.invocations.map(
    (invocation: { result: { statusCode: number; body: string } }) => invocation.result,
  );
  expect(none.statusCode).toBe(200);
  expect(JSON.parse(none.body)).toEqual({
    service: "ecr-anywhere-webhook",
    version: packageJson.version,
    authorizationHeaderReceived: false,
  });
  // A valid token and an invalid one get the same answer, which never carries either.
  expect(JSON.parse(valid.body)).toEqual({
    ...JSON.parse(none.body),
    authorizationHeaderReceived: true,
  });
  expect(invalid).toEqual(valid);
  expect(post.statusCode).toBe(405);
  expect(output).not.toContain(cluster.token);
  expect(output).not.toContain(stranger);
});

it("carries no Secrets Manager client, and the webhook no KMS client: each reaches only its own store", async () => {
  const webhook = await readFile(join(workDir, "dist/webhook/index.mjs"), "utf8");
  const refresher = await readFile(join(workDir, "dist/refresher/index.mjs"), "utf8");
  for (const bundle of [webhook, refresher]) expect(bundle).not.toContain("secretsmanager");
  // KMS's wire protocol names its operations TrentService.*: the refresher opens kubeconfigs...
  expect(refresher).toContain("TrentService");
  // ...and the webhook has no code that could, whatever its role allowed.
  expect(webhook).not.toContain("TrentService");
});

it("the broker key rotation bundle stores a key, which the webhook bundle federates with", async () => {
  const credentials = { accessKeyId: "AKIAWEBHOOKTESTKEY01", secretAccessKey: "x" };
  const iamOptions = {
    region: "us-east-1",
    endpoint: motoUrl,
    credentials: async () => credentials,
  };
  const userName = "ecr-anywhere-bundle-broker";
  const table = "bundle-broker-key";
  await new IamQueryClient(iamOptions).call(
    "CreateUser",
    { UserName: userName },
    AbortSignal.timeout(5000),
  );
  const dynamo = new DynamoDBClient({ endpoint: motoUrl, region: "us-east-1", credentials });
  await createTokenTable(dynamo, table);
  const env = {
    AWS_ENDPOINT_URL_IAM: motoUrl,
    AWS_ENDPOINT_URL_DYNAMODB: motoUrl,
    ECR_ANYWHERE_TOKEN_TABLE: table,
    ECR_ANYWHERE_BROKER_USER: userName,
  };
  const rotation = await invokeAlone("broker-rotation", [{ source: "aws.events" }], env);
  expect(rotation.report.invocations[0].error).toBeUndefined();
  const stored = await new DynamoBrokerKeyStore(table, dynamo).read(AbortSignal.timeout(5000));
  const keys = await new IamAccessKeys(iamOptions).list(userName, AbortSignal.timeout(5000));
  expect(keys.map((key) => key.accessKeyId)).toEqual([stored?.accessKeyId]);
  expect(rotation.output).not.toContain(stored?.secretAccessKey);

  const review = admissionReview();
  const event = webhookEvent({ clusterId: "bundle", token: cluster.token, body: review });
  const { report } = await invokeAlone("webhook", [event], env);
  expect(JSON.parse(report.invocations[0].result.body).response).toMatchObject({ allowed: true });
});

function kubeconfigFor(server: string): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "c", cluster: { server, "certificate-authority-data": "Y2E=" } }],
    users: [{ name: "u", user: { token: "not-a-real-token" } }],
    contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
    "current-context": "c",
  });
}

it("the webhook asset `cdk deploy` would upload is the same artifact and answers an admission", async () => {
  const app = new App({ outdir: join(workDir, "cdk.out") });
  const stack = new EcrAnywhereStack(app, "BundleTest");
  const assembly = app.synth();
  const functions = Template.fromStack(stack).findResources("AWS::Lambda::Function", {
    Properties: { Timeout: 10 },
  });
  const [webhook] = Object.values(functions) as { Properties: { Code: { S3Key: string } } }[];
  const assetHash = webhook?.Properties.Code.S3Key.replace(/\.zip$/, "");
  const review = admissionReview();
  const { report } = await invokeAlone(
    join(assembly.directory, `asset.${assetHash}`, "index.mjs"),
    [webhookEvent({ clusterId: "bundle", token: cluster.token, body: review })],
  );
  const result = report.invocations[0].result;
  expect(result.statusCode).toBe(200);
  expect(JSON.parse(result.body).response).toMatchObject({
    uid: review.request.uid,
    allowed: true,
    patchType: "JSONPatch",
  });
}, 60_000);
