/**
 * `ecr-anywhere preflight` and `doctor` as a user runs them: the CLI in its own process, its SDK
 * clients pointed at moto (STS, CloudFormation, DynamoDB, KMS, CloudWatch) and at a stand-in for
 * Lambda's GetAccountSettings (which moto lacks), and doctor's health calls at the webhook served
 * locally as a function URL. Exit codes and findings, and which region and profile reached AWS.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CloudFormationClient, CreateStackCommand } from "@aws-sdk/client-cloudformation";
import {
  CloudWatchClient,
  PutMetricAlarmCommand,
  SetAlarmStateCommand,
} from "@aws-sdk/client-cloudwatch";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import packageJson from "../../package.json" with { type: "json" };
import { ensureRecordTables, localAwsEnv, putClusterRecord } from "../../testbed/aws-env.ts";
import { type LambdaStandIn, startLambdaStandIn } from "../../testbed/lambda-stand-in.ts";
import { startWebhookProcess, type WebhookProcess } from "../../testbed/webhook-process.ts";
import { clusterRecord, newWebhookToken } from "../support/admission.ts";

const motoUrl = inject("motoUrl");
const repo = join(import.meta.dirname, "../..");
const RECORDS = "doctor-test";
let lambda: LambdaStandIn;
let webhook: WebhookProcess;
let headerDropper: Server;
let dir: string;
let caFile: string;

const client = <T>(Client: new (config: object) => T, region = "us-east-1"): T =>
  new Client({
    endpoint: motoUrl,
    region,
    credentials: { accessKeyId: "AKIAWEBHOOKTESTKEY01", secretAccessKey: "x" },
  });

interface Finding {
  check: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

/** The CLI in its own process, as a user runs it, with only the test bed's AWS settings. */
/** `undefined` in `env` removes a variable the test bed sets (child_process ignores those). */
function cli(args: string[], env: Record<string, string | undefined> = {}) {
  return new Promise<{
    code: number;
    json: { ok: boolean; findings: Finding[]; clusters?: number };
    stderr: string;
  }>((resolve) => {
    execFile(
      process.execPath,
      [join(repo, "cli/ecr-anywhere.ts"), "-o", "json", ...args],
      {
        env: {
          PATH: process.env.PATH ?? "",
          HOME: dir,
          ...localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: motoUrl, cloudFormation: motoUrl }),
          AWS_ENDPOINT_URL_CLOUDWATCH: motoUrl,
          AWS_ENDPOINT_URL_LAMBDA: lambda.url,
          NODE_EXTRA_CA_CERTS: caFile,
          ...env,
        },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
        resolve({ code, json: stdout ? JSON.parse(stdout) : { ok: false, findings: [] }, stderr });
      },
    );
  });
}

const finding = (findings: Finding[], check: string) =>
  findings.find((candidate) => candidate.check === check);

async function createStack(name: string, template: object, region = "us-east-1") {
  await client(CloudFormationClient, region).send(
    new CreateStackCommand({ StackName: name, TemplateBody: JSON.stringify(template) }),
  );
}

/**
 * The stack's alarms, named as CloudFormation names those the template leaves unnamed:
 * `<stack>-<logical id>-<suffix>`. Put directly: moto's CloudFormation creates alarms it cannot
 * name or list.
 */
async function putAlarms(stack: string) {
  for (const metric of ["AuthFailures", "Denials"])
    await client(CloudWatchClient).send(
      new PutMetricAlarmCommand({
        AlarmName: `${stack}-EcrAnywhereMonitoring${metric}0A1B2C3D-1Q2W3E4R5T6Y`,
        Namespace: "EcrAnywhere",
        MetricName: metric,
        Statistic: "Sum",
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
      }),
    );
}

/** The deployed stack's shape as doctor reads it: outputs and the token table. */
function stackTemplate(stack: string, webhookUrl: string) {
  return {
    Resources: {
      EcrAnywhereWebhookTokenStore3A1B2C4D: {
        Type: "AWS::DynamoDB::Table",
        Properties: {
          TableName: `${stack}-tokens`,
          BillingMode: "PAY_PER_REQUEST",
          AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
          // CloudFormation's SSEEnabled; moto reads the API's Enabled.
          SSESpecification: { SSEEnabled: true, Enabled: true, SSEType: "KMS" },
        },
      },
    },
    Outputs: {
      WebhookUrl: { Value: webhookUrl },
      ClusterRecords: { Value: RECORDS },
    },
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ecr-anywhere-doctor-"));
  lambda = await startLambdaStandIn();
  webhook = await startWebhookProcess({
    bundle: join(repo, "functions/webhook/handler.ts"),
    env: localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: motoUrl }),
    logFile: join(dir, "webhook.log"),
  });
  caFile = join(dir, "ca.pem");
  const ca = Buffer.from(await readFile(webhook.caBundleFile, "utf8"), "base64");
  await writeFile(caFile, ca);
  headerDropper = await startHeaderDropper(webhook.url, ca.toString("utf8"));
  const { port } = headerDropper.address() as AddressInfo;
  await ensureRecordTables(client(DynamoDBClient), RECORDS);
  for (const id of ["doctor-a", "doctor-b"])
    await putClusterRecord(motoUrl, clusterRecord(id, newWebhookToken().sha256), {
      records: RECORDS,
    });
  await createStack("DoctorTest", stackTemplate("DoctorTest", `${webhook.url}/`));
  await putAlarms("DoctorTest");
  await putAlarms("DoctorTest-prod");
  await createStack(
    "DoctorDroppedHeader",
    stackTemplate("DoctorDroppedHeader", `http://127.0.0.1:${port}/`),
  );
  await putAlarms("DoctorDroppedHeader");
  await createStack("CDKToolkit", {
    Resources: { Bucket: { Type: "AWS::S3::Bucket" } },
    Outputs: { BootstrapVersion: { Value: "28" } },
  });
  await createStack(
    "CDKToolkit",
    {
      Resources: { Bucket: { Type: "AWS::S3::Bucket" } },
      Outputs: { BootstrapVersion: { Value: "5" } },
    },
    "eu-west-1",
  );
}, 60_000);

afterAll(async () => {
  await webhook?.stop();
  await new Promise((resolve) => headerDropper?.close(resolve));
  await lambda?.stop();
  await rm(dir, { recursive: true, force: true });
});

/**
 * A front for the webhook that drops the Authorization header, as a function URL that did not
 * hand it on would: doctor must say header mode cannot work.
 */
function startHeaderDropper(target: string, ca: string): Promise<Server> {
  const server = createServer((request, response) => {
    const { authorization: _, host: __, ...headers } = request.headers;
    const forward = httpsRequest(
      `${target}${request.url}`,
      { method: request.method, headers, ca },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    request.pipe(forward);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

const DENIALS_ALARM = "DoctorTest-EcrAnywhereMonitoringDenials0A1B2C3D-1Q2W3E4R5T6Y";

describe("doctor", () => {
  it("passes a healthy stack: health in both forms, the header received, alarms, token table, 2 clusters", async () => {
    const { code, json } = await cli(["doctor", "--stack", "DoctorTest"]);
    expect(json.findings.filter((found) => !found.ok)).toEqual([]);
    expect(code).toBe(0);
    expect(finding(json.findings, "webhook health (path form)")?.detail).toBe(
      `version ${packageJson.version}`,
    );
    expect(finding(json.findings, "webhook health (header form)")?.detail).toMatch(
      /the Authorization header reached the function: header mode works/,
    );
    // Its own two: not those of DoctorTest-prod, whose names start the same.
    expect(finding(json.findings, "alarms")?.detail).toMatch(/^2 alarms, none in ALARM/);
    expect(finding(json.findings, "shared token table")?.detail).toMatch(
      /DoctorTest-tokens ACTIVE/,
    );
    expect(json.clusters).toBe(2);
  });

  it("exits 1 when the header does not reach the function, naming the fix", async () => {
    const { code, json } = await cli(["doctor", "--stack", "DoctorDroppedHeader"]);
    expect(code).toBe(1);
    const header = finding(json.findings, "webhook health (header form)");
    expect(header).toMatchObject({ ok: false, fix: expect.stringMatching(/--webhook-auth url/) });
    expect(finding(json.findings, "webhook health (path form)")?.ok).toBe(true);
  });

  it("exits 1 on an alarm in ALARM, and on a stack that does not exist", async () => {
    const cloudWatch = client(CloudWatchClient);
    await cloudWatch.send(
      new SetAlarmStateCommand({
        AlarmName: DENIALS_ALARM,
        StateValue: "ALARM",
        StateReason: "test",
      }),
    );
    try {
      const { code, json } = await cli(["doctor", "--stack", "DoctorTest"]);
      expect(code).toBe(1);
      expect(finding(json.findings, "alarms")).toMatchObject({
        ok: false,
        detail: expect.stringContaining(DENIALS_ALARM),
      });
    } finally {
      await cloudWatch.send(
        new SetAlarmStateCommand({
          AlarmName: DENIALS_ALARM,
          StateValue: "OK",
          StateReason: "test",
        }),
      );
    }
    const missing = await cli(["doctor", "--stack", "Nowhere"]);
    expect(missing.code).toBe(1);
    expect(missing.json.findings).toEqual([
      expect.objectContaining({
        check: "stack Nowhere",
        ok: false,
        detail: "does not exist in us-east-1",
        fix: "deploy it with npx cdk deploy in your deploy app (docs/deploy.md), or pass --stack and --region of the stack you deployed",
      }),
    ]);
  });

  it("exits 2 on a wrong flag", async () => {
    expect((await cli(["doctor", "--timeout", "soon"])).code).toBe(2);
  });
});

describe("preflight", () => {
  // Other suites share this moto: their tables of the default records name must not look left behind.
  const FRESH = `fresh-${randomUUID().slice(0, 8)}`;

  it("passes a bootstrapped account with room for the defaults, and reaches Lambda in --region", async () => {
    lambda.limit = 1000;
    lambda.unreserved = 1000;
    lambda.calls.length = 0;
    const { code, json } = await cli([
      "--region",
      "us-east-1",
      "--records",
      FRESH,
      "preflight",
      "--stack",
      "Fresh",
    ]);
    expect(json.findings.filter((found) => !found.ok)).toEqual([]);
    expect(code).toBe(0);
    expect(finding(json.findings, "CDK bootstrap")?.detail).toBe(
      "CDKToolkit version 28 (CREATE_COMPLETE)",
    );
    expect(finding(json.findings, "credentials and region")?.detail).toMatch(/ in us-east-1$/);
    expect(lambda.calls).toEqual([{ region: "us-east-1", accessKeyId: "AKIAWEBHOOKTESTKEY01" }]);
  });

  it("refuses a reservation that would leave Lambda fewer than 100 unreserved, and a pool a refresh would fill", async () => {
    lambda.limit = 150;
    lambda.unreserved = 150;
    const reserved = await cli([
      "--records",
      FRESH,
      "preflight",
      "--stack",
      "Fresh",
      "--webhook-reserved-concurrency",
      "60",
    ]);
    expect(reserved.code).toBe(1);
    expect(finding(reserved.json.findings, "Lambda concurrency")).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/would leave 90 unreserved, and Lambda keeps at least 100/),
      fix: expect.stringMatching(/at least 160, or leave webhookReservedConcurrency unset/),
    });
    // A new account's quota of 10: the default 10 marks would fill it.
    lambda.limit = 10;
    lambda.unreserved = 10;
    const small = await cli(["--records", FRESH, "preflight", "--stack", "Fresh"]);
    expect(small.code).toBe(1);
    expect(finding(small.json.findings, "Lambda concurrency")?.fix).toMatch(
      /lower refresherMarkConcurrency to at most 4/,
    );
    const lowered = await cli([
      "--records",
      FRESH,
      "preflight",
      "--stack",
      "Fresh",
      "--refresher-mark-concurrency",
      "4",
    ]);
    expect(lowered.code).toBe(0);
  });

  it("finds an old bootstrap, and record tables an earlier stack left behind", async () => {
    lambda.limit = 1000;
    lambda.unreserved = 1000;
    // eu-west-1: bootstrap version 5; DoctorTest's record tables exist in us-east-1 only.
    const old = await cli(["--region", "eu-west-1", "preflight"]);
    expect(old.code).toBe(1);
    expect(finding(old.json.findings, "CDK bootstrap")).toMatchObject({
      ok: false,
      fix: "npx cdk bootstrap aws://123456789012/eu-west-1 in your deploy app (docs/deploy.md)",
    });
    const none = await cli(["--region", "ap-south-1", "preflight"]);
    expect(finding(none.json.findings, "CDK bootstrap")?.detail).toBe(
      "no stack CDKToolkit in 123456789012/ap-south-1",
    );
    const leftBehind = await cli(["--records", RECORDS, "preflight", "--stack", "Fresh"]);
    expect(leftBehind.code).toBe(1);
    expect(finding(leftBehind.json.findings, `DynamoDB table ${RECORDS}-webhook`)?.ok).toBe(false);
    // Upgrading the stack that owns them is fine.
    const upgrade = await cli(["--records", RECORDS, "preflight", "--stack", "DoctorTest"]);
    expect(finding(upgrade.json.findings, `DynamoDB table ${RECORDS}-webhook`)?.ok).toBe(true);
  });

  it("uses --profile's credentials and region, and --region over the profile's", async () => {
    await writeFile(join(dir, "config"), "[profile ops]\nregion = eu-west-1\n");
    await writeFile(
      join(dir, "credentials"),
      "[ops]\naws_access_key_id = AKIAOPSPROFILEKEY001\naws_secret_access_key = ops-secret\n",
    );
    const profileEnv = {
      AWS_CONFIG_FILE: join(dir, "config"),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, "credentials"),
      AWS_REGION: undefined,
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
    };
    lambda.calls.length = 0;
    const fromProfile = await cli(["--profile", "ops", "preflight"], profileEnv);
    const overridden = await cli(
      ["--profile", "ops", "--region", "ap-south-1", "preflight"],
      profileEnv,
    );
    // STS and CloudFormation too: the profile's region has the old bootstrap, ap-south-1 none.
    expect(finding(fromProfile.json.findings, "credentials and region")?.detail).toMatch(
      / in eu-west-1$/,
    );
    expect(finding(fromProfile.json.findings, "CDK bootstrap")?.detail).toMatch(/version 5 /);
    expect(finding(overridden.json.findings, "credentials and region")?.detail).toMatch(
      / in ap-south-1$/,
    );
    expect(finding(overridden.json.findings, "CDK bootstrap")?.detail).toMatch(/^no stack/);
    expect(lambda.calls).toEqual([
      { region: "eu-west-1", accessKeyId: "AKIAOPSPROFILEKEY001" },
      { region: "ap-south-1", accessKeyId: "AKIAOPSPROFILEKEY001" },
    ]);
  });

  it("exits 1 without credentials, and 2 on a wrong flag", async () => {
    const noCredentials = await cli(["preflight"], {
      AWS_ACCESS_KEY_ID: "",
      AWS_SECRET_ACCESS_KEY: "",
      AWS_EC2_METADATA_DISABLED: "true",
    });
    expect(noCredentials.code).toBe(1);
    expect(noCredentials.json.findings[0]).toMatchObject({
      check: "credentials and region",
      ok: false,
    });
    expect((await cli(["preflight", "--webhook-reserved-concurrency", "0"])).code).toBe(2);
  });
});
