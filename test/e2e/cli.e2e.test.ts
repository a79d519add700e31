/**
 * The `ecr-anywhere` CLI as a user runs it (a separate process, real exit codes and output) against
 * the real kube-apiserver, moto (the record tables in DynamoDB, KMS) and the webhook behind the
 * function-URL server.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import {
  ApiException,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { RecordStore } from "../../cli/adapters/aws.ts";
import { sha256Hex } from "../../functions/core/auth.ts";
import { ENV } from "../../functions/core/config.ts";
import { buildLambdas } from "../../scripts/build.ts";
import {
  ensureRecordTables,
  localAwsEnv,
  putClusterRecord,
  readClusterRecordItems,
  recordTablesEnv,
} from "../../testbed/aws-env.ts";
import { kubeconfig } from "../../testbed/control-plane.ts";
import { type LambdaStandIn, startLambdaStandIn } from "../../testbed/lambda-stand-in.ts";
import { freePort } from "../../testbed/ports.ts";
import { decodeDockerConfig } from "../support/admission.ts";
import { DYNAMODB_INTERNAL_ERROR, startFaultProxy } from "../support/fault-server.ts";
import { EAST, names, startWebhookHarness, WEST } from "./webhook-harness.ts";

const motoUrl = inject("motoUrl");
const server = inject("kubeServer");
const caPem = inject("kubeCaPem");
const adminKubeconfig = inject("adminKubeconfig");
/** The built CLI, as the package ships it (test/e2e/global-setup.ts). */
const cliPath = inject("cliPath");
const CLUSTER = "cli-e2e";
const NAMESPACES = ["cli-apps", "cli-team"];
const RECORDS = "cli-e2e";
/** The deployed refresher, as the Lambda stand-in serves it from its built bundle. */
const REFRESHER = "ecr-anywhere-refresher";

let harness: Awaited<ReturnType<typeof startWebhookHarness>>;
let work: string;
let adminPath: string;
let caFile: string;
let keyArn: string;
let lambda: LambdaStandIn;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cliPath, ...args], {
      env: {
        ...process.env,
        AWS_ENDPOINT_URL_KMS: motoUrl,
        AWS_ENDPOINT_URL_LAMBDA: lambda.url,
        ...env,
      },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

function onboardArgs(...extra: string[]): string[] {
  return [
    "onboard",
    CLUSTER,
    "--registries",
    `${EAST},${WEST}`,
    "--namespaces",
    NAMESPACES.join(","),
    "--webhook-url",
    harness.server.url,
    "--record-key-arn",
    keyArn,
    "--allowed-registries",
    `${EAST},${WEST}`,
    "--refresher-function",
    REFRESHER,
    "--ca-bundle",
    caFile,
    "--records",
    RECORDS,
    "--kubeconfig",
    adminPath,
    "--allowed-source-cidrs",
    "127.0.0.1/32",
    "--verify-timeout",
    "30",
    ...extra,
  ];
}

async function webhookConfiguration() {
  try {
    return await harness.admission.readMutatingWebhookConfiguration({ name: "ecr-anywhere" });
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}

/** The record's two items as stored (the kubeconfig opened); undefined when there is none. */
async function storedRecord(clusterId = CLUSTER) {
  const { webhook, refresher } = await readClusterRecordItems(motoUrl, clusterId, {
    records: RECORDS,
  });
  if (!webhook && !refresher) return undefined;
  return { ...refresher, ...webhook } as {
    webhookTokenSha256: string[];
    kubeconfig: string;
    registries: string[];
    revision: number;
    deletedAt?: number;
    expiresAt?: number;
  };
}

/** `args` with the value after `flag` replaced. */
function withFlag(args: string[], flag: string, value: string): string[] {
  return args.map((arg, index) => (args[index - 1] === flag ? value : arg));
}

/** Whether the cluster holds the refresher's namespace: the first object onboard applies. */
async function refresherNamespaceExists(): Promise<boolean> {
  return harness.core.readNamespace({ name: "ecr-anywhere" }).then(
    () => true,
    (error: unknown) => {
      if (error instanceof ApiException && error.code === 404) return false;
      throw error;
    },
  );
}

function tokenOf(url: string | undefined): string {
  return url?.split("/").at(-1) ?? "";
}

beforeAll(async () => {
  // As Lambda runs it: every environment caches records on its own, as rotation must survive.
  harness = await startWebhookHarness(motoUrl, adminKubeconfig, "cli-harness", {
    lambdaConcurrency: 10,
  });
  // A short record TTL, so token rotation waits seconds, not a minute.
  process.env.ECR_ANYWHERE_RECORD_TTL_SECONDS = "1";
  Object.assign(process.env, recordTablesEnv(RECORDS));
  harness.reset();
  work = await mkdtemp(join(tmpdir(), "ecr-anywhere-cli-e2e-"));
  adminPath = join(work, "admin.kubeconfig");
  await writeFile(adminPath, adminKubeconfig);
  caFile = join(work, "webhook-ca.pem");
  await writeFile(caFile, harness.caPem);
  const env = localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: harness.ecr.url });
  const kms = new KMSClient({
    endpoint: motoUrl,
    region: "us-east-1",
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID ?? "", secretAccessKey: "x" },
  });
  keyArn = (await kms.send(new CreateKeyCommand({}))).KeyMetadata?.Arn ?? "";
  // The stack makes the tables; here the test bed does.
  await ensureRecordTables(
    new DynamoDBClient({
      endpoint: motoUrl,
      region: "us-east-1",
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID ?? "", secretAccessKey: "x" },
    }),
    RECORDS,
  );
  for (const name of NAMESPACES)
    await harness.core.createNamespace({ body: { metadata: { name } } });
  // The deployed refresher: its built bundle, run by the Lambda stand-in with the stack's settings.
  await buildLambdas(join(work, "dist"));
  lambda = await startLambdaStandIn({
    [REFRESHER]: {
      bundle: join(work, "dist/refresher/index.mjs"),
      env: { ...env, ...recordTablesEnv(RECORDS), [ENV.recordKeyArn]: keyArn },
    },
  });
});

afterAll(async () => {
  // The test bed runs no namespace controller: finish the deletion offboard started, as it would.
  const terminating = await harness?.core
    .readNamespace({ name: "ecr-anywhere" })
    .catch(() => undefined);
  if (terminating?.metadata?.deletionTimestamp)
    await harness.core.replaceNamespaceFinalize({
      name: "ecr-anywhere",
      body: { ...terminating, spec: { finalizers: [] } },
    });
  await harness?.admission
    .deleteMutatingWebhookConfiguration({ name: "ecr-anywhere" })
    .catch(() => undefined);
  await harness?.stop();
  await lambda?.stop();
});

describe("bad input: one line, exit 2, nothing changed", () => {
  it.each([
    [
      ["onboard", "Bad_Id", "--registries", EAST, "--namespaces", "a"],
      /cluster id "Bad_Id": expected a DNS-1123 label/,
    ],
    [
      ["onboard", "ok", "--registries", "docker.io", "--namespaces", "a"],
      /"docker\.io" is not an ECR registry host/,
    ],
    [
      ["onboard", "ok", "--registries", EAST],
      /required option '--namespaces <names>' not specified/,
    ],
    [
      ["onboard", "ok", "--registries", EAST, "--namespaces", "a", "--webhook-url", "http://x"],
      /expected an https:\/\/ URL/,
    ],
    [["offboard", "ok", "--recovery-window-days", "31"], /from 1 to 30/],
    [
      ["onboard", "ok", "--registries", EAST, "--namespaces", "a", "--pull-through-cache"],
      /--pull-through-cache needs --repositories/,
    ],
    [
      ["onboard", "ok", "--registries", EAST, "--namespaces", "a"],
      /--allowed-source-cidrs is needed with a token in the webhook URL: kube-apiserver shows that URL/,
    ],
  ])("%j", async (args, message) => {
    const result = await cli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("refuses the test bed's loopback API server without its allowance, in one line, and goes on with --api-server-url", async () => {
    const withoutAllowance = { ECR_ANYWHERE_ALLOW_LOCAL_API_SERVERS: "false" };
    const refused = await cli(onboardArgs(), withoutAllowance);
    expect(refused.code).toBe(2);
    // The error line (the task list above it repeats the reason on the failed step).
    const reason = refused.stderr.split("\n").filter((line) => line.startsWith("ecr-anywhere:"));
    expect(reason).toEqual([
      expect.stringMatching(
        /^ecr-anywhere: the kubeconfig's API server 127\.0\.0\.1:\d+ is a loopback, link-local or metadata address: from Lambda that is the function itself .*; pass --api-server-url with the address the refresher will use \(docs\/network\.md\)$/,
      ),
    ]);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    expect(await webhookConfiguration()).toBeUndefined();
    expect(await storedRecord()).toBeUndefined();
    // The address Lambda will use instead: the check passes, and the record carries it.
    const proceeded = await cli(
      onboardArgs(
        "--dry-run",
        "-o",
        "json",
        "--api-server-url",
        "https://k3s.example.com:6443",
      ).map((arg) => (arg === CLUSTER ? "route-check" : arg)),
      withoutAllowance,
    );
    expect(proceeded.stderr).toBe("");
    expect(proceeded.code).toBe(0);
    const rendered = JSON.parse(proceeded.stdout) as {
      records: { refresher: { kubeconfig: string } };
    };
    expect(rendered.records.refresher.kubeconfig).toContain("server: https://k3s.example.com:6443");
    // And that address is checked too.
    const privateUrl = await cli(
      onboardArgs("--dry-run", "--api-server-url", "https://10.1.2.3:6443"),
      withoutAllowance,
    );
    expect(privateUrl.code).toBe(2);
    expect(privateUrl.stderr).toMatch(/--api-server-url: 10\.1\.2\.3:6443 is a private address/);
  });

  it("refuses a registry outside the stack's allowedRegistries before anything changes", async () => {
    const refused = await cli(withFlag(onboardArgs(), "--allowed-registries", EAST));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      new RegExp(
        `--registries: ${WEST.replaceAll(".", "\\.")} is outside the stack's allowedRegistries \\(${EAST.replaceAll(".", "\\.")}\\): its tokens could never pull from there`,
      ),
    );
    const repositories = await cli(
      withFlag(
        onboardArgs("--repositories", "arn:aws:ecr:ap-south-1:123456789012:repository/team/*"),
        "--allowed-registries",
        `${EAST},${WEST}`,
      ),
    );
    expect(repositories.code).toBe(2);
    expect(repositories.stderr).toMatch(
      /--repositories: arn:aws:ecr:ap-south-1:123456789012:repository\/team\/\* is in a registry outside/,
    );
    // Nothing in the cluster, nothing in the record store, and the refresher never asked.
    expect(await refresherNamespaceExists()).toBe(false);
    expect(await webhookConfiguration()).toBeUndefined();
    expect(await storedRecord()).toBeUndefined();
    expect(lambda.invocations).toEqual([]);
    // Without the stack, the list is a flag, and required.
    const unlisted = await cli(
      onboardArgs().filter(
        (arg, index, all) =>
          arg !== "--allowed-registries" && all[index - 1] !== "--allowed-registries",
      ),
    );
    expect(unlisted.code).toBe(2);
    expect(unlisted.stderr).toMatch(/--webhook-url needs --allowed-registries/);
  });

  it("names an unknown context and a namespace that does not exist", async () => {
    const context = await cli(onboardArgs("--context", "nope"));
    expect(context.code).toBe(2);
    expect(context.stderr).toMatch(
      /--context "nope": context was not found for specified context: nope \(contexts: e2e\)/,
    );
    const namespace = await cli(
      onboardArgs().map((arg) => (arg === NAMESPACES.join(",") ? "cli-apps,missing-ns" : arg)),
    );
    expect(namespace.code).toBe(2);
    expect(namespace.stderr).toMatch(/--namespaces: missing-ns does not exist in the cluster/);
    expect(await webhookConfiguration()).toBeUndefined();
  });
});

describe("onboard", () => {
  it("refuses, before changing anything, when the identity lacks permissions", async () => {
    await harness.core.createNamespacedServiceAccount({
      namespace: "default",
      body: { metadata: { name: "cli-limited" } },
    });
    const { status } = await harness.core.createNamespacedServiceAccountToken({
      namespace: "default",
      name: "cli-limited",
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const limited = join(work, "limited.kubeconfig");
    await writeFile(
      limited,
      kubeconfig(server, caPem, { name: "cli-limited", token: status?.token ?? "" }),
    );
    const result = await cli(onboardArgs().map((arg) => (arg === adminPath ? limited : arg)));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /your Kubernetes identity may not: .*patch clusterroles\.rbac\.authorization\.k8s\.io \(cluster-wide\)/,
    );
    expect(result.stderr).toMatch(/create secrets in namespace cli-apps/);
    expect(await webhookConfiguration()).toBeUndefined();
    expect(await storedRecord()).toBeUndefined();
  });

  it("refuses to sit beside an in-cluster ECR Anywhere webhook unless told to replace it", async () => {
    await harness.admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name: "ecr-anywhere-helm" },
        webhooks: [
          {
            name: "ecr-anywhere.centml.ai",
            admissionReviewVersions: ["v1"],
            sideEffects: "None",
            failurePolicy: "Ignore",
            clientConfig: { service: { namespace: "ecr-anywhere", name: "ecr-anywhere-webhook" } },
            rules: [
              {
                apiGroups: [""],
                apiVersions: ["v1"],
                operations: ["CREATE", "UPDATE"],
                resources: ["secrets"],
              },
            ],
            objectSelector: { matchLabels: { [names.managedLabel]: "true" } },
          },
        ],
      },
    });
    const refused = await cli(onboardArgs());
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /MutatingWebhookConfiguration ecr-anywhere-helm \(service ecr-anywhere\/ecr-anywhere-webhook\) already handles these labels/,
    );
    expect(refused.stderr).toMatch(/--replace-existing/);
    expect(await webhookConfiguration()).toBeUndefined();
  });

  it("stops midway with a clear message when the record store fails, and a re-run completes", async () => {
    const proxy = await startFaultProxy(motoUrl, /PutItem/, DYNAMODB_INTERNAL_ERROR);
    try {
      const failed = await cli(onboardArgs("--replace-existing"), {
        AWS_ENDPOINT_URL_DYNAMODB: proxy.url,
        AWS_MAX_ATTEMPTS: "1",
      });
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(
        /Webhook token and cluster record failed: write cluster record cli-e2e \(tables cli-e2e-webhook, cli-e2e-refresher\): InternalServerError/,
      );
      // What is done, what is left (the old webhook too: it goes right before ours), and how to finish.
      expect(failed.stderr).toMatch(
        /^ {2}done: create Namespace ecr-anywhere; create ServiceAccount ecr-anywhere\/ecr-anywhere-refresher; /m,
      );
      expect(failed.stderr).toMatch(
        /^ {2}left: create ClusterRecord cli-e2e\/cli-e2e; remove MutatingWebhookConfiguration ecr-anywhere-helm; create MutatingWebhookConfiguration ecr-anywhere; update Namespace cli-apps; update Namespace cli-team$/m,
      );
      expect(failed.stderr).toMatch(
        /^ {2}to finish, run: ecr-anywhere --context e2e onboard cli-e2e .* --replace-existing$/m,
      );
      expect(proxy.faults).toBeGreaterThan(0);
      // Nothing that would block writes was left behind: no webhook configuration yet.
      expect(await webhookConfiguration()).toBeUndefined();
    } finally {
      await proxy.stop();
    }
    const resumed = await cli(onboardArgs("--replace-existing", "--output", "json"));
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    const result = JSON.parse(resumed.stdout) as {
      changed: boolean;
      verified: { namespace: string; registries: string[] }[];
    };
    expect(result.changed).toBe(true);
    expect(result.verified.map((item) => item.namespace)).toEqual(NAMESPACES);
    for (const item of result.verified) expect(item.registries).toEqual([EAST, WEST]);
    // The in-cluster webhook was replaced, not kept beside ours.
    await expect(
      harness.admission.readMutatingWebhookConfiguration({ name: "ecr-anywhere-helm" }),
    ).rejects.toThrow();
    expect(resumed.stdout).not.toContain(
      tokenOf((await webhookConfiguration())?.webhooks?.[0]?.clientConfig.url),
    );
  });

  it("leaves the cluster so that a plain client's managed Secret is filled", async () => {
    const secret = await harness.core.createNamespacedSecret({
      namespace: "cli-apps",
      body: {
        metadata: { name: "ecr-pull", labels: { [names.managedLabel]: "true" } },
        type: "kubernetes.io/dockerconfigjson",
        data: { ".dockerconfigjson": Buffer.from("FAKE").toString("base64") },
      },
    });
    expect(
      Object.keys(decodeDockerConfig(secret.data?.[".dockerconfigjson"]).auths).sort(),
    ).toEqual([WEST, EAST].sort());
    const record = await storedRecord();
    expect(record?.registries).toEqual([EAST, WEST]);
    expect(record?.webhookTokenSha256).toEqual([
      sha256Hex(tokenOf((await webhookConfiguration())?.webhooks?.[0]?.clientConfig.url)),
    ]);
  });

  it("changes nothing on a second run, and says so", async () => {
    const before = await webhookConfiguration();
    const stored = await readClusterRecordItems(motoUrl, CLUSTER, { records: RECORDS });
    const again = await cli(onboardArgs("--output", "json"));
    expect(again.code).toBe(0);
    const result = JSON.parse(again.stdout) as { changed: boolean; steps: { outcome: string }[] };
    expect(result.changed).toBe(false);
    expect(result.steps.map((step) => step.outcome).join(" | ")).toMatch(
      /unchanged.*kept.*token kept; record .* unchanged.*unchanged/,
    );
    expect((await webhookConfiguration())?.metadata?.resourceVersion).toBe(
      before?.metadata?.resourceVersion,
    );
    // Neither item was written: the refresher's revision and the webhook's item are as they were.
    expect(await readClusterRecordItems(motoUrl, CLUSTER, { records: RECORDS })).toEqual(stored);
    const text = await cli(onboardArgs());
    expect(text.stdout).toMatch(/Cluster cli-e2e was already onboarded: nothing changed/);
  });

  it("asks the deployed refresher to refresh the cluster, and fails when it cannot reach the API server", async () => {
    const before = lambda.invocations.length;
    const ok = await cli(onboardArgs("--output", "json"));
    expect(ok.code).toBe(0);
    const steps = (JSON.parse(ok.stdout) as { steps: { title: string; outcome: string }[] }).steps;
    expect(steps.at(-1)).toMatchObject({
      title: "Verify: the deployed refresher refreshes the cluster from AWS",
      outcome: expect.stringMatching(
        /^it reached https:\/\/127\.0\.0\.1:\d+: \d+ managed Secret\(s\), 0 stale, 0 refreshed$/,
      ),
    });
    expect(lambda.invocations.slice(before)).toEqual([
      { functionName: REFRESHER, event: { clusterId: CLUSTER } },
    ]);
    // The record names an address the operator does not use, and the refresher cannot reach:
    // the round trip from here passes, the refresher's check fails the command.
    const closed = `https://127.0.0.1:${await freePort()}`;
    const failed = await cli(onboardArgs("--api-server-url", closed));
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      new RegExp(
        `the deployed refresher \\(${REFRESHER}\\) could not refresh cluster ${CLUSTER} at ${closed}: .*ECONNREFUSED.*see docs/network\\.md`,
      ),
    );
    // Everything before it was done: the interruption leaves nothing behind but the check itself.
    expect(failed.stderr).toMatch(/left: nothing in the cluster or the record/);
    expect(failed.stderr).toMatch(/to finish, run: ecr-anywhere .*onboard cli-e2e /);
    expect((await storedRecord())?.kubeconfig).toContain(`server: ${closed}`);
    // Skipped, the same run succeeds without asking the refresher.
    const asked = lambda.invocations.length;
    const skipped = await cli(
      onboardArgs("--api-server-url", closed, "--skip-refresher-check", "--output", "json"),
    );
    expect(skipped.code).toBe(0);
    expect(
      (JSON.parse(skipped.stdout) as { steps: { outcome: string }[] }).steps.at(-1)?.outcome,
    ).toBe("skipped (--skip-refresher-check)");
    expect(lambda.invocations.length).toBe(asked);
    // Back to the address the refresher reaches: proven again.
    expect((await cli(onboardArgs())).code).toBe(0);
    expect((await storedRecord())?.kubeconfig).toContain(`server: ${server}`);
    expect(lambda.invocations.length).toBe(asked + 1);
  });

  it("--dry-run writes files that apply cleanly, and touches neither the cluster nor the record store", async () => {
    const out = join(work, "gitops");
    const before = await webhookConfiguration();
    const result = await cli(
      [...onboardArgs("--dry-run", "--out", out)].map((arg) =>
        arg === CLUSTER ? "gitops-cluster" : arg,
      ),
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/nothing was changed/);
    const read = async (name: string) =>
      parseAllDocuments(await readFile(join(out, name), "utf8")).map((document) => document.toJS());
    const [webhook] = await read("webhook.yaml");
    const token = tokenOf(webhook?.webhooks?.[0]?.clientConfig?.url);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // In webhook.yaml only: the output names the file, not the token.
    expect(result.stdout).not.toContain(token);
    const documents = [...(await read("namespaces.yaml")), ...(await read("rbac.yaml")), webhook];
    const record = JSON.parse(await readFile(join(out, "webhook-record.json"), "utf8")) as {
      clusterId: string;
      webhookTokenSha256: string[];
    };
    expect(record).toMatchObject({
      clusterId: "gitops-cluster",
      webhookTokenSha256: [sha256Hex(token)],
    });
    // The webhook's part holds nothing secret; the refresher's holds the kubeconfig to fill in.
    expect(record).not.toHaveProperty("kubeconfig");
    const refresherPart = JSON.parse(
      await readFile(join(out, "refresher-record.json"), "utf8"),
    ) as { clusterId: string; kubeconfig: string };
    expect(refresherPart.kubeconfig).toContain("REPLACE-WITH-REFRESHER-TOKEN");
    expect(result.stdout).toContain("ecr-anywhere put-record gitops-cluster --from");
    // Applies cleanly: a server-side dry-run apply of every document through the real API server.
    const config = new KubeConfig();
    config.loadFromString(adminKubeconfig);
    const objects = KubernetesObjectApi.makeApiClient(config);
    for (const document of documents)
      await objects.patch(
        document,
        undefined,
        "All",
        "gitops",
        true,
        PatchStrategy.ServerSideApply,
      );
    expect((await webhookConfiguration())?.metadata?.resourceVersion).toBe(
      before?.metadata?.resourceVersion,
    );
    expect(await storedRecord("gitops-cluster")).toBeUndefined();
  });

  it("put-record stores the rendered record once the refresher's token is in it, sealed", async () => {
    const out = join(work, "gitops");
    const put = (...extra: string[]) =>
      cli([
        "put-record",
        "gitops-cluster",
        "--from",
        out,
        "--records",
        RECORDS,
        "--record-key-arn",
        keyArn,
        ...extra,
      ]);
    const unfilled = await put();
    expect(unfilled.code).toBe(2);
    expect(unfilled.stderr).toMatch(/replace REPLACE-WITH-REFRESHER-TOKEN/);
    expect(await storedRecord("gitops-cluster")).toBeUndefined();
    const { status } = await harness.core.createNamespacedServiceAccountToken({
      namespace: "ecr-anywhere",
      name: "ecr-anywhere-refresher",
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const file = join(out, "refresher-record.json");
    const token = status?.token ?? "";
    await writeFile(
      file,
      (await readFile(file, "utf8")).replace("REPLACE-WITH-REFRESHER-TOKEN", token),
    );
    const stored = await put("--output", "json");
    expect(stored.stderr).toBe("");
    expect(JSON.parse(stored.stdout)).toMatchObject({ ok: true, outcome: "created" });
    expect(stored.stdout).not.toContain(token);
    const items = await readClusterRecordItems(motoUrl, "gitops-cluster", { records: RECORDS });
    expect(items.refresher?.kubeconfig).toContain(token);
    expect(items.webhook?.webhookTokenSha256).toHaveLength(1);
    expect(JSON.parse((await put("--output", "json")).stdout)).toMatchObject({
      outcome: "unchanged",
    });
    // The refresher's view of the stored record reaches the cluster.
    const status2 = await cli(["status", "gitops-cluster", "--records", RECORDS, "-o", "json"]);
    expect(JSON.parse(status2.stdout)).toMatchObject({
      clusters: [{ clusterId: "gitops-cluster", reachable: true }],
    });
    // Out of the way of the status tests below: the same API server as the onboarded cluster.
    const store = new RecordStore(RECORDS);
    expect(await store.scheduleDeletion("gitops-cluster", 1)).toBe("scheduled");
    store.close();
  });
});

describe("onboard --webhook-auth header", () => {
  it("writes the API server's admission files with the token, and manifests and output without it", async () => {
    const out = join(work, "header-auth");
    const result = await cli(
      [...onboardArgs("--dry-run", "--webhook-auth", "header", "--out", out)].map((arg) =>
        arg === CLUSTER ? "header-cluster" : arg,
      ),
    );
    expect(result.code).toBe(0);
    const credentials = parse(
      await readFile(join(out, "api-server/webhook-credentials.kubeconfig"), "utf8"),
    ) as { users: { name: string; user: { token: string } }[] };
    const [user] = credentials.users;
    const token = user?.user.token ?? "";
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(user?.name).toBe(new URL(harness.server.url).host);
    expect(result.stdout).not.toContain(token);
    const manifests = (
      await Promise.all(
        ["namespaces.yaml", "rbac.yaml", "webhook.yaml"].map((name) =>
          readFile(join(out, name), "utf8"),
        ),
      )
    ).join("");
    expect(manifests).not.toContain(token);
    expect(manifests).toContain(`${harness.server.url}/v1/clusters/header-cluster\n`);
    const record = JSON.parse(await readFile(join(out, "webhook-record.json"), "utf8")) as {
      webhookTokenSha256: string[];
    };
    expect(record.webhookTokenSha256).toEqual([sha256Hex(token)]);
    expect(parse(await readFile(join(out, "api-server/admission.yaml"), "utf8"))).toMatchObject({
      kind: "AdmissionConfiguration",
      plugins: [
        {
          name: "MutatingAdmissionWebhook",
          configuration: {
            kind: "WebhookAdmissionConfiguration",
            kubeConfigFile: "/etc/kubernetes/ecr-anywhere/webhook-credentials.kubeconfig",
          },
        },
      ],
    });
  });

  it("is refused without --dry-run, saying why", async () => {
    const result = await cli(onboardArgs("--webhook-auth", "header"));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--webhook-auth header needs --dry-run");
  });
});

describe("rotate-token", () => {
  it("rotates under steady traffic with no write refused", async () => {
    const oldToken = tokenOf((await webhookConfiguration())?.webhooks?.[0]?.clientConfig.url);
    // Several environments, each with its own record cache, must be live: start them together.
    await Promise.all(
      Array.from({ length: 4 }, (_, index) =>
        harness.core.createNamespacedSecret({
          namespace: "cli-team",
          dryRun: "All",
          body: {
            metadata: { name: `warm-${index}`, labels: { [names.managedLabel]: "true" } },
            type: "kubernetes.io/dockerconfigjson",
            data: { ".dockerconfigjson": "e30=" },
          },
        }),
      ),
    );
    let writes = 0;
    const failures: string[] = [];
    let running = true;
    // Three writers at once, so several environments (each with its own record cache) serve them.
    const traffic = Promise.all(
      [0, 1, 2].map(async (writer) => {
        while (running) {
          try {
            await harness.core.createNamespacedSecret({
              namespace: "cli-team",
              body: {
                metadata: {
                  name: `rotation-${writer}-${writes}`,
                  labels: { [names.managedLabel]: "true" },
                },
                type: "kubernetes.io/dockerconfigjson",
                data: { ".dockerconfigjson": "e30=" },
              },
            });
            writes++;
          } catch (error) {
            failures.push((error as Error).message.slice(0, 300));
          }
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }),
    );
    const rotated = await cli([
      "rotate-token",
      CLUSTER,
      "--records",
      RECORDS,
      "--kubeconfig",
      adminPath,
      "--propagation-seconds",
      "3",
    ]);
    running = false;
    await traffic;
    expect(rotated.stderr).not.toMatch(/ecr-anywhere:/);
    expect(rotated.code).toBe(0);
    expect(failures).toEqual([]);
    expect(writes).toBeGreaterThan(40);
    expect(harness.pool?.stats.environmentsStarted).toBeGreaterThan(1);
    const newToken = tokenOf((await webhookConfiguration())?.webhooks?.[0]?.clientConfig.url);
    expect(newToken).not.toBe(oldToken);
    expect((await storedRecord())?.webhookTokenSha256).toEqual([sha256Hex(newToken)]);
    expect(rotated.stdout + rotated.stderr).not.toContain(newToken);
    expect(rotated.stdout + rotated.stderr).not.toContain(oldToken);
  });
});

describe("status", () => {
  it("reports a stale Secret and a down cluster, and exits 1", async () => {
    const healthy = await cli(["status", CLUSTER, "--records", RECORDS, "--output", "json"]);
    expect(healthy.code).toBe(0);
    expect(JSON.parse(healthy.stdout)).toMatchObject({
      ok: true,
      clusters: [{ clusterId: CLUSTER, reachable: true, namespaces: NAMESPACES, staleSecrets: 0 }],
    });

    // Short-lived credentials on one Secret: stale after half their life, 10 s. 20 s, not less:
    // status must still find them stale, not expired, after the CLI has started on a busy machine.
    harness.ecr.expiresInSeconds = 20;
    harness.reset(); // a new webhook instance: its cached 12 h tokens would hide the short ones
    await harness.core.createNamespacedSecret({
      namespace: "cli-apps",
      body: {
        metadata: { name: "short-lived", labels: { [names.managedLabel]: "true" } },
        type: "kubernetes.io/dockerconfigjson",
        data: { ".dockerconfigjson": "e30=" },
      },
    });
    harness.ecr.expiresInSeconds = 12 * 3600;
    harness.reset();
    await new Promise((resolve) => setTimeout(resolve, 10_500));
    const closedPort = await freePort();
    await putClusterRecord(
      motoUrl,
      {
        clusterId: "cli-down",
        kubeconfig: kubeconfig(`https://127.0.0.1:${closedPort}`, caPem, {
          name: "x",
          token: "not-a-real-token",
        }),
        webhookTokenSha256: [sha256Hex("x".repeat(43))],
        registries: [EAST],
      },
      { records: RECORDS },
    );

    const all = await cli(["status", "--records", RECORDS, "--output", "json"]);
    expect(all.code).toBe(1);
    const report = JSON.parse(all.stdout) as {
      ok: boolean;
      clusters: {
        clusterId: string;
        reachable: boolean;
        staleSecrets: number;
        problems: string[];
      }[];
    };
    expect(report.ok).toBe(false);
    const byId = Object.fromEntries(report.clusters.map((cluster) => [cluster.clusterId, cluster]));
    expect(byId[CLUSTER]).toMatchObject({ reachable: true, staleSecrets: 1 });
    expect(byId[CLUSTER]?.problems.join()).toMatch(/1 managed Secret\(s\) stale/);
    expect(byId["cli-down"]).toMatchObject({ reachable: false });
    expect(byId["cli-down"]?.problems.join()).toMatch(/ECONNREFUSED/);

    const table = await cli(["status", "--records", RECORDS]);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(
      /^CLUSTER\s+REACHABLE\s+NAMESPACES\s+MANAGED\s+STALE\s+LEAST LEFT/,
    );
    expect(table.stdout).toMatch(/cli-down\s+no\s+-/);
  });
});

describe("offboard", () => {
  it("asks first, and without a terminal changes nothing unless --yes", async () => {
    const result = await cli([
      "offboard",
      CLUSTER,
      "--records",
      RECORDS,
      "--kubeconfig",
      adminPath,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/pass --yes to confirm/);
    expect(await webhookConfiguration()).toBeDefined();
  });

  it("removes the webhook configuration, labels, RBAC and record, and leaves the Secrets alone", async () => {
    const result = await cli([
      "offboard",
      CLUSTER,
      "--yes",
      "--records",
      RECORDS,
      "--kubeconfig",
      adminPath,
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Managed Secrets were left as they are/);
    expect(await webhookConfiguration()).toBeUndefined();
    const rbac = new KubeConfig();
    rbac.loadFromString(adminKubeconfig);
    const api = rbac.makeApiClient(RbacAuthorizationV1Api);
    const bindings = await api.listRoleBindingForAllNamespaces({
      labelSelector: "app.kubernetes.io/managed-by=ecr-anywhere",
    });
    expect(bindings.items).toEqual([]);
    const roles = await api.listClusterRole({
      labelSelector: "app.kubernetes.io/managed-by=ecr-anywhere",
    });
    expect(roles.items).toEqual([]);
    for (const name of NAMESPACES) {
      const namespace = await harness.core.readNamespace({ name });
      expect(namespace.metadata?.labels?.[names.namespaceLabel]).toBeUndefined();
    }
    // Both items marked deleted, DynamoDB's TTL at the end of the default 7-day window; the id is
    // unknown to the webhook at once, and the output says how to undo it.
    const { webhook, refresher } = await readClusterRecordItems(motoUrl, CLUSTER, {
      records: RECORDS,
    });
    for (const item of [webhook, refresher])
      expect(item?.expiresAt).toBe(Math.floor(Number(item?.deletedAt) / 1000) + 7 * 86_400);
    expect(result.stdout).toMatch(/run the same ecr-anywhere onboard command again/);
    expect(result.stdout).toContain(
      `aws dynamodb update-item --table-name ${RECORDS}-webhook --key '{"clusterId":{"S":"${CLUSTER}"}}' --update-expression "REMOVE deletedAt, expiresAt"`,
    );
    const kept = await harness.core.readNamespacedSecret({
      namespace: "cli-apps",
      name: "ecr-pull",
    });
    expect(Object.keys(decodeDockerConfig(kept.data?.[".dockerconfigjson"]).auths)).toHaveLength(2);
  });
});
