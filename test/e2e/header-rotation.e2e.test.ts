/**
 * Rotating the token of a cluster with header authentication, on real kube-apiservers started
 * with an admission kubeconfig: `rotate-token --out` writes the new credentials while both tokens
 * are valid; the API server restarted with them passes `rotate-token --finish`, which leaves only
 * the new token valid; offboard recognises the header-mode webhook.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { AdmissionregistrationV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parse, stringify } from "yaml";
import { newAdmissionConfiguration } from "../../cli/core/admission-config.ts";
import { sha256Hex } from "../../functions/core/auth.ts";
import {
  contractNames,
  DEFAULT_LABEL_PREFIX,
  DEFAULT_RECORDS_NAME,
  recordTables,
} from "../../functions/core/contract.ts";
import {
  webhookConfiguration,
  webhookCredentialsKubeconfig,
} from "../../k8s/webhook-configuration.ts";
import { type ControlPlane, startControlPlane } from "../../testbed/control-plane.ts";
import { waitFor } from "../../testbed/ports.ts";
import { startWebhookHarness } from "./webhook-harness.ts";

const CLUSTER = "header-rotation";
const NAMESPACE = "header-apps";
const names = contractNames(DEFAULT_LABEL_PREFIX);
/** The built CLI, as the package ships it (test/e2e/global-setup.ts). */
const cliPath = inject("cliPath");

let harness: Awaited<ReturnType<typeof startWebhookHarness>>;
let plane: ControlPlane | undefined;
let work: string;
let credentialsPath: string;
let admissionPath: string;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cliPath, ...args], {
      env: process.env,
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** A header-mode API server reading `credentialsPath`, with the cluster's webhook registered. */
async function startPlane(): Promise<string> {
  await plane?.stop();
  plane = await startControlPlane({
    apiserverArgs: [`--admission-control-config-file=${admissionPath}`],
  });
  const config = new KubeConfig();
  config.loadFromString(plane.adminKubeconfig);
  const core = config.makeApiClient(CoreV1Api);
  await core.createNamespace({
    body: { metadata: { name: NAMESPACE, labels: { [names.namespaceLabel]: "enabled" } } },
  });
  await config.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
    body: webhookConfiguration({
      name: "ecr-anywhere",
      labelPrefix: DEFAULT_LABEL_PREFIX,
      webhookUrl: `${harness.server.url}/v1/clusters/${CLUSTER}`,
      caPem: harness.caPem,
    }),
  });
  const kubeconfigPath = join(work, `admin-${Date.now()}.kubeconfig`);
  await writeFile(kubeconfigPath, plane.adminKubeconfig);
  // Until the configuration is in effect, a managed write passes unfilled.
  let lastProblem = "";
  await waitFor(
    async () => {
      const secret = await core
        .createNamespacedSecret({
          namespace: NAMESPACE,
          dryRun: "All",
          body: {
            metadata: { name: `probe-${Date.now()}`, labels: { [names.managedLabel]: "true" } },
            type: "kubernetes.io/dockerconfigjson",
            data: { ".dockerconfigjson": "e30=" },
          },
        })
        .catch((error: unknown) => {
          lastProblem = error instanceof Error ? error.message : String(error);
          return undefined;
        });
      return secret?.metadata?.annotations?.[names.expiresAtAnnotation] !== undefined;
    },
    30_000,
    "the header-mode webhook to fill a managed Secret",
  ).catch(async (error: unknown) => {
    const last = harness.events.at(-1);
    throw new Error(
      `${(error as Error).message}; last problem: ${lastProblem}; last call ${last?.rawPath} auth=${last?.headers?.authorization ? "yes" : "no"} from ${last?.requestContext.http.sourceIp}; stored ${JSON.stringify(await storedHashes())} token ${sha256Hex(harness.token)} header ${last?.headers?.authorization === `Bearer ${harness.token}`}`,
    );
  });
  return kubeconfigPath;
}

async function storedHashes(): Promise<string[]> {
  const dynamodb = new DynamoDBClient({
    endpoint: inject("motoUrl"),
    region: "us-east-1",
    credentials: { accessKeyId: "AKIAWEBHOOKTESTKEY01", secretAccessKey: "x" },
  });
  const { Item } = await dynamodb.send(
    new GetItemCommand({
      TableName: recordTables(DEFAULT_RECORDS_NAME).webhook,
      Key: { clusterId: { S: CLUSTER } },
    }),
  );
  dynamodb.destroy();
  return (Item?.webhookTokenSha256?.L ?? []).map((value: { S?: string }) => value.S ?? "");
}

beforeAll(async () => {
  // A short record TTL, so the rotation waits seconds, not a minute.
  process.env.ECR_ANYWHERE_RECORD_TTL_SECONDS = "1";
  harness = await startWebhookHarness(inject("motoUrl"), inject("adminKubeconfig"), CLUSTER);
  work = await mkdtemp(join(tmpdir(), "ecr-anywhere-header-rotation-"));
  credentialsPath = join(work, "webhook-credentials.kubeconfig");
  admissionPath = join(work, "admission.yaml");
  await writeFile(
    credentialsPath,
    stringify(
      webhookCredentialsKubeconfig([{ webhookUrl: harness.server.url, token: harness.token }]),
    ),
    { mode: 0o600 },
  );
  await writeFile(admissionPath, stringify(newAdmissionConfiguration(credentialsPath)));
}, 180_000);

afterAll(async () => {
  await plane?.stop();
  await harness?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("rotate-token with header authentication", () => {
  it("rotates in two runs across an API server restart, leaving only the new token valid", async () => {
    const before = await startPlane();
    const out = join(work, "rotation");
    const start = await cli([
      "rotate-token",
      CLUSTER,
      "--kubeconfig",
      before,
      "--out",
      out,
      "--propagation-seconds",
      "2",
    ]);
    expect(start.stderr).toBe("");
    expect(start.code).toBe(0);
    expect(start.stdout).toMatch(/rotate-token header-rotation --finish/);
    const rotated = parse(await readFile(join(out, "webhook-credentials.kubeconfig"), "utf8")) as {
      users: { user: { token: string } }[];
    };
    const next = rotated.users[0]?.user.token ?? "";
    expect(start.stdout).not.toContain(next);
    expect(await storedHashes()).toEqual([sha256Hex(harness.token), sha256Hex(next)]);

    // The operator installs the file and restarts the API server.
    await copyFile(join(out, "webhook-credentials.kubeconfig"), credentialsPath);
    const after = await startPlane();
    const finish = await cli([
      "rotate-token",
      CLUSTER,
      "--kubeconfig",
      after,
      "--finish",
      "--propagation-seconds",
      "2",
    ]);
    expect(finish.stderr).toBe("");
    expect(finish.code).toBe(0);
    expect(await storedHashes()).toEqual([sha256Hex(next)]);

    const offboard = await cli(["offboard", CLUSTER, "--kubeconfig", after, "--yes"]);
    expect(offboard.code).toBe(0);
  });
});
