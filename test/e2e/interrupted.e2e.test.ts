/**
 * Onboard and offboard interrupted at each step in turn, on the real kube-apiserver: the API
 * server (through a fault proxy) or DynamoDB (through moto's) fails one request, the command says
 * what it did, what is left and the command that finishes the job, and that command, run as
 * printed, leaves the cluster as an uninterrupted run would.
 */
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { ApiException, KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { sha256Hex } from "../../functions/core/auth.ts";
import {
  ensureRecordTables,
  localAwsEnv,
  readClusterRecordItems,
  recordTablesEnv,
} from "../../testbed/aws-env.ts";
import { kubeconfig } from "../../testbed/control-plane.ts";
import { DYNAMODB_INTERNAL_ERROR, startFaultProxy } from "../support/fault-server.ts";
import { type KubeFaultProxy, startKubeFaultProxy } from "../support/kube-fault-proxy.ts";
import { EAST, names, startWebhookHarness } from "./webhook-harness.ts";

const motoUrl = inject("motoUrl");
const server = inject("kubeServer");
const caPem = inject("kubeCaPem");
const adminKubeconfig = inject("adminKubeconfig");
/** The built CLI, as the package ships it (test/e2e/global-setup.ts). */
const cliPath = inject("cliPath");
const CLUSTER = "interrupted-e2e";
const NAMESPACE = "interrupted-apps";
const RECORDS = "interrupted-e2e";
const RBAC = "/apis/rbac.authorization.k8s.io/v1";
const ADMISSION = "/apis/admissionregistration.k8s.io/v1";

let harness: Awaited<ReturnType<typeof startWebhookHarness>>;
let proxy: KubeFaultProxy;
let kubeconfigPath: string;
let caFile: string;
let keyArn: string;
let rbac: RbacAuthorizationV1Api;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cliPath, ...args], {
      env: { ...process.env, AWS_ENDPOINT_URL_KMS: motoUrl, ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const globals = () => ["--kubeconfig", kubeconfigPath, "--records", RECORDS];

const onboardArgs = () => [
  ...globals(),
  "onboard",
  CLUSTER,
  "--registries",
  EAST,
  "--namespaces",
  NAMESPACE,
  "--webhook-url",
  harness.server.url,
  "--record-key-arn",
  keyArn,
  "--ca-bundle",
  caFile,
  "--allowed-registries",
  EAST,
  "--allowed-source-cidrs",
  "127.0.0.1/32",
  // The refresher's own check has a suite of its own (cli.e2e); here every step before it is failed.
  "--skip-refresher-check",
  "--verify-timeout",
  "20",
];

const offboardArgs = () => [...globals(), "offboard", CLUSTER, "--yes"];

/** The command an interrupted run printed, as words (the test's paths need no quoting). */
function finishingCommand(result: CliResult): string[] {
  const line = /to finish, run: (.+)$/m.exec(result.stderr)?.[1] ?? "";
  const [program, ...words] = line.split(" ");
  expect(program).toBe("ecr-anywhere");
  return words;
}

async function exists(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return true;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return false;
    throw error;
  }
}

async function managedRbac(): Promise<string[]> {
  const selector = { labelSelector: "app.kubernetes.io/managed-by=ecr-anywhere" };
  const [roles, bindings, clusterBindings] = await Promise.all([
    rbac.listClusterRole(selector),
    rbac.listRoleBindingForAllNamespaces(selector),
    rbac.listClusterRoleBinding(selector),
  ]);
  return [...roles.items, ...bindings.items, ...clusterBindings.items].map(
    (item) => item.metadata?.name ?? "",
  );
}

/** The test bed runs no namespace controller: finish the deletion offboard started, as it would. */
async function finishNamespaceDeletion(): Promise<void> {
  const namespace = await harness.core
    .readNamespace({ name: "ecr-anywhere" })
    .catch(() => undefined);
  if (!namespace?.metadata?.deletionTimestamp) return;
  await harness.core.replaceNamespaceFinalize({
    name: "ecr-anywhere",
    body: { ...namespace, spec: { finalizers: [] } },
  });
  for (let tries = 0; tries < 50; tries++) {
    if (!(await exists(() => harness.core.readNamespace({ name: "ecr-anywhere" })))) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What a clean offboard leaves: no webhook, label, RBAC or live record; the namespace going. */
async function expectOffboarded(): Promise<void> {
  expect(
    await exists(() =>
      harness.admission.readMutatingWebhookConfiguration({ name: "ecr-anywhere" }),
    ),
  ).toBe(false);
  const namespace = await harness.core.readNamespace({ name: NAMESPACE });
  expect(namespace.metadata?.labels?.[names.namespaceLabel]).toBeUndefined();
  expect(await managedRbac()).toEqual([]);
  const refresher = await harness.core
    .readNamespace({ name: "ecr-anywhere" })
    .catch(() => undefined);
  expect(refresher === undefined || refresher.metadata?.deletionTimestamp !== undefined).toBe(true);
  const { webhook, refresher: refresherItem } = await readClusterRecordItems(motoUrl, CLUSTER, {
    records: RECORDS,
  });
  for (const item of [webhook, refresherItem]) expect(item?.deletedAt).toBeDefined();
}

/** What a clean onboard leaves: the webhook with the recorded token, the label, the refresher. */
async function expectOnboarded(): Promise<void> {
  const configuration = await harness.admission.readMutatingWebhookConfiguration({
    name: "ecr-anywhere",
  });
  const token = configuration.webhooks?.[0]?.clientConfig.url?.split("/").at(-1) ?? "";
  const { webhook } = await readClusterRecordItems(motoUrl, CLUSTER, { records: RECORDS });
  expect(webhook?.deletedAt).toBeUndefined();
  expect(webhook?.webhookTokenSha256).toEqual([sha256Hex(token)]);
  const namespace = await harness.core.readNamespace({ name: NAMESPACE });
  expect(namespace.metadata?.labels?.[names.namespaceLabel]).toBe("enabled");
  expect((await managedRbac()).sort()).toEqual(
    [
      "ecr-anywhere-refresher",
      "ecr-anywhere-refresher-namespace-events",
      "ecr-anywhere-refresher-namespaces",
      "ecr-anywhere-refresher-namespaces",
      "ecr-anywhere-refresher-secrets",
      "ecr-anywhere-refresher-token",
    ].sort(),
  );
}

async function ensureOnboarded(): Promise<void> {
  await finishNamespaceDeletion();
  const result = await cli(onboardArgs());
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
}

async function ensureOffboarded(): Promise<void> {
  const result = await cli(offboardArgs());
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  await finishNamespaceDeletion();
}

beforeAll(async () => {
  harness = await startWebhookHarness(motoUrl, adminKubeconfig, "interrupted-harness");
  process.env.ECR_ANYWHERE_RECORD_TTL_SECONDS = "1";
  Object.assign(process.env, recordTablesEnv(RECORDS));
  harness.reset();
  const work = await mkdtemp(join(tmpdir(), "ecr-anywhere-interrupted-e2e-"));
  caFile = join(work, "webhook-ca.pem");
  await writeFile(caFile, harness.caPem);
  const env = localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: harness.ecr.url });
  const credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID ?? "", secretAccessKey: "x" };
  const kms = new KMSClient({ endpoint: motoUrl, region: "us-east-1", credentials });
  keyArn = (await kms.send(new CreateKeyCommand({}))).KeyMetadata?.Arn ?? "";
  await ensureRecordTables(
    new DynamoDBClient({ endpoint: motoUrl, region: "us-east-1", credentials }),
    RECORDS,
  );
  await harness.core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  const admin = new KubeConfig();
  admin.loadFromString(adminKubeconfig);
  rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  // The operator: a cluster-admin bearer token, which the fault proxy passes through unchanged.
  await harness.core.createNamespacedServiceAccount({
    namespace: "default",
    body: { metadata: { name: "interrupted-operator" } },
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: "interrupted-operator" },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: "cluster-admin",
      },
      subjects: [{ kind: "ServiceAccount", name: "interrupted-operator", namespace: "default" }],
    },
  });
  const { status } = await harness.core.createNamespacedServiceAccountToken({
    namespace: "default",
    name: "interrupted-operator",
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  proxy = await startKubeFaultProxy(server, caPem);
  kubeconfigPath = join(work, "operator.kubeconfig");
  await writeFile(
    kubeconfigPath,
    kubeconfig(proxy.url, proxy.caPem, { name: "operator", token: status?.token ?? "" }),
  );
});

afterAll(async () => {
  if (proxy) {
    proxy.fail = undefined;
    await cli(offboardArgs()).catch(() => undefined);
    await finishNamespaceDeletion().catch(() => undefined);
    await proxy.stop();
  }
  await rbac?.deleteClusterRoleBinding({ name: "interrupted-operator" }).catch(() => undefined);
  await harness?.stop();
});

/** One failing request: the Kubernetes API's (through the proxy) or DynamoDB's (through moto's). */
type Fault = { readonly kube: RegExp } | { readonly dynamodb: RegExp };

async function withFault(fault: Fault, run: (env: Record<string, string>) => Promise<CliResult>) {
  if ("kube" in fault) {
    proxy.fail = fault.kube;
    proxy.faults = 0;
    try {
      const result = await run({});
      expect(proxy.faults).toBeGreaterThan(0);
      return result;
    } finally {
      proxy.fail = undefined;
    }
  }
  const dynamodb = await startFaultProxy(motoUrl, fault.dynamodb, DYNAMODB_INTERNAL_ERROR);
  try {
    const result = await run({ AWS_ENDPOINT_URL_DYNAMODB: dynamodb.url, AWS_MAX_ATTEMPTS: "1" });
    expect(dynamodb.faults).toBeGreaterThan(0);
    return result;
  } finally {
    await dynamodb.stop();
  }
}

describe("offboard interrupted at each step", () => {
  it.each<[string, Fault, RegExp, RegExp]>([
    [
      "the webhook configuration",
      { kube: new RegExp(`^DELETE ${ADMISSION}/mutatingwebhookconfigurations/ecr-anywhere`) },
      /^ {2}done: nothing$/m,
      /^ {2}left: remove MutatingWebhookConfiguration ecr-anywhere; update Namespace interrupted-apps; .*remove ClusterRecord interrupted-e2e\/interrupted-e2e$/m,
    ],
    [
      "the namespace labels",
      { kube: new RegExp(`^PATCH /api/v1/namespaces/${NAMESPACE}\\?`) },
      /^ {2}done: remove MutatingWebhookConfiguration ecr-anywhere$/m,
      /^ {2}left: update Namespace interrupted-apps; remove RoleBinding .*remove Namespace ecr-anywhere; remove ClusterRecord/m,
    ],
    [
      "the refresher's RBAC, midway",
      { kube: new RegExp(`^DELETE ${RBAC}/clusterroles/ecr-anywhere-refresher-secrets`) },
      /^ {2}done: .*update Namespace interrupted-apps; .*remove RoleBinding interrupted-apps\/ecr-anywhere-refresher;/m,
      /^ {2}left: remove ClusterRole ecr-anywhere-refresher-secrets; .*remove Namespace ecr-anywhere; remove ClusterRecord/m,
    ],
    [
      "the refresher's namespace",
      { kube: /^DELETE \/api\/v1\/namespaces\/ecr-anywhere(\?.*)?$/ },
      /^ {2}done: .*remove ServiceAccount ecr-anywhere\/ecr-anywhere-refresher$/m,
      /^ {2}left: remove Namespace ecr-anywhere; remove ClusterRecord interrupted-e2e\/interrupted-e2e$/m,
    ],
    [
      "the record",
      { dynamodb: /UpdateItem/ },
      /^ {2}done: .*remove Namespace ecr-anywhere$/m,
      /^ {2}left: remove ClusterRecord interrupted-e2e\/interrupted-e2e$/m,
    ],
  ])(
    "%s: says what is left and how to finish; that command finishes it",
    async (_, fault, done, left) => {
      await ensureOnboarded();
      const failed = await withFault(fault, (env) => cli(offboardArgs(), env));
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(done);
      expect(failed.stderr).toMatch(left);
      const finish = finishingCommand(failed);
      expect(finish).toEqual(["--context", "e2e", ...globals(), "offboard", CLUSTER, "--yes"]);
      const finished = await cli(finish);
      expect(finished.stderr).toBe("");
      expect(finished.code).toBe(0);
      await expectOffboarded();
      await finishNamespaceDeletion();
    },
  );
});

const NAMESPACE_LABEL_FAULT: Fault = {
  kube: new RegExp(`^PATCH /api/v1/namespaces/${NAMESPACE}\\?`),
};

describe("onboard interrupted at each step", () => {
  // Each case starts offboarded, so the record is there, marked deleted: onboard restores it.
  it.each<[string, Fault, RegExp]>([
    [
      "the refresher's RBAC, midway",
      { kube: new RegExp(`^PATCH ${RBAC}/clusterroles/ecr-anywhere-refresher-secrets`) },
      /^ {2}left: create ClusterRole ecr-anywhere-refresher-secrets; .*update ClusterRecord .*create MutatingWebhookConfiguration ecr-anywhere; update Namespace interrupted-apps$/m,
    ],
    [
      "the refresher's credentials",
      {
        kube: /^POST \/api\/v1\/namespaces\/ecr-anywhere\/serviceaccounts\/ecr-anywhere-refresher\/token/,
      },
      /^ {2}left: update ClusterRecord interrupted-e2e\/interrupted-e2e; create MutatingWebhookConfiguration ecr-anywhere; update Namespace interrupted-apps$/m,
    ],
    [
      "the record",
      { dynamodb: /PutItem/ },
      /^ {2}left: update ClusterRecord interrupted-e2e\/interrupted-e2e; create MutatingWebhookConfiguration/m,
    ],
    [
      "the webhook configuration",
      { kube: new RegExp(`^PATCH ${ADMISSION}/mutatingwebhookconfigurations/ecr-anywhere`) },
      /^ {2}left: create MutatingWebhookConfiguration ecr-anywhere; update Namespace interrupted-apps$/m,
    ],
    [
      "the namespace label (and with --output json, as data)",
      NAMESPACE_LABEL_FAULT,
      /^ {2}left: update Namespace interrupted-apps$/m,
    ],
    [
      "the verification",
      { kube: new RegExp(`^POST /api/v1/namespaces/${NAMESPACE}/secrets\\?`) },
      /^ {2}left: nothing in the cluster or the record$/m,
    ],
  ])(
    "%s: says what is left and how to finish; that command finishes it",
    async (_, fault, left) => {
      await ensureOffboarded();
      const json = fault === NAMESPACE_LABEL_FAULT;
      const args = onboardArgs().map((arg) => (arg === "20" ? "8" : arg));
      const failed = await withFault(fault, (env) =>
        cli(json ? ["-o", "json", ...args] : args, env),
      );
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(left);
      expect(failed.stderr).toMatch(/^ {2}done: create Namespace ecr-anywhere; /m);
      const finish = finishingCommand(failed);
      // The same command, pinned to the cluster it ran against.
      expect(finish).toEqual(["--context", "e2e", ...(json ? ["-o", "json"] : []), ...args]);
      if (json) {
        // For scripts the same as data: what is done, what is left, and the command.
        const document = JSON.parse(failed.stdout) as {
          ok: boolean;
          left: string[];
          finish: string;
        };
        expect(document.ok).toBe(false);
        expect(document.left).toEqual(["update Namespace interrupted-apps"]);
        expect(document.finish).toBe(["ecr-anywhere", ...finish].join(" "));
      }
      const finished = await cli(finish);
      expect(finished.stderr).toBe("");
      expect(finished.code).toBe(0);
      await expectOnboarded();
    },
  );
});
