/**
 * The user's journey with the installed package (`npm run test:package`, after the deploy app):
 * the `ecr-anywhere` from the tarball, installed alone, onboards a cluster on the test bed's real
 * kube-apiserver as `npm run demo` does from sources, with moto, the ECR stand-in, and the
 * package's own webhook bundle behind the local function-URL server, and its refresher bundle
 * behind the Lambda stand-in (onboard's refresher check invokes it). A registry outside the
 * stack's allowedRegistries is refused first, changing nothing. Then `status`, `rotate-token`,
 * and `offboard`; and a second cluster the GitOps way: `onboard --dry-run --out`, the files
 * applied, `put-record`, and `offboard`. Each job's exit code and its effect are checked: the
 * webhook fills a managed Secret, and after offboard the cluster is as it was.
 *
 * Only the CLI and the bundles under test come from the package; the test bed (processes,
 * tables, the record key) is the repository's, as the demo's is.
 */
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  type V1Secret,
} from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { ENV } from "../functions/core/config.ts";
import { contractNames, DOCKER_CONFIG_JSON_KEY } from "../functions/core/contract.ts";
import { createRecordTables, localAwsEnv, testRecordKey } from "../testbed/aws-env.ts";
import { startControlPlane } from "../testbed/control-plane.ts";
import { startEcrStandIn } from "../testbed/ecr-stand-in.ts";
import { startLambdaStandIn } from "../testbed/lambda-stand-in.ts";
import { startMoto } from "../testbed/moto.ts";
import { waitFor } from "../testbed/ports.ts";
import { startWebhookProcess } from "../testbed/webhook-process.ts";
import { type Ran, run } from "./run-command.ts";

const ROOT = join(import.meta.dirname, "..");
const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
/** A registry outside the stack's allowedRegistries (EAST alone here). */
const WEST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const REFRESHER_FUNCTION = "ecr-anywhere-refresher";
const names = contractNames();

export interface JourneyOptions {
  /** The directory the package alone is installed in (`npm install <tarball>`). */
  readonly userDir: string;
  /** PATH for the CLI: its node_modules/.bin first, a Node `engines` allows, no repository. */
  readonly path: string;
  /** A scratch directory of this run. */
  readonly work: string;
  readonly check: (condition: boolean, message: string) => void;
  readonly step: <T>(name: string, work: () => Promise<T>) => Promise<T>;
}

/** What the test bed gives the journey: the cluster's clients and the stand-ins' settings. */
interface TestBed {
  readonly kubeconfigPath: string;
  readonly env: Record<string, string>;
  readonly keyArn: string;
  readonly webhookUrl: string;
  readonly caBundleFile: string;
  readonly core: CoreV1Api;
  readonly objects: KubernetesObjectApi;
  readonly admission: AdmissionregistrationV1Api;
  readonly rbac: RbacAuthorizationV1Api;
  /** How many times the deployed refresher (the Lambda stand-in) was invoked. */
  readonly refresherInvocations: () => number;
}

export async function packageJourney(options: JourneyOptions): Promise<void> {
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const bed = await options.step(
      "the test bed (kube-apiserver, moto, ECR stand-in, webhook)",
      () => startTestBed(options, stops),
    );
    await options.step("onboard, status, rotate-token, offboard: the installed CLI", () =>
      directJourney(bed, options),
    );
    await options.step("onboard --dry-run --out, applied; put-record; offboard", () =>
      gitOpsJourney(bed, options),
    );
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

async function startTestBed(
  options: JourneyOptions,
  stops: (() => Promise<unknown>)[],
): Promise<TestBed> {
  // Fast once cached; on a new machine this is the Go build of kube-apiserver and etcd.
  const built = await run("bash", [join(ROOT, "scripts/build-control-plane.sh")], { cwd: ROOT });
  options.check(built.code === 0, `the control plane did not build:\n${built.stderr.slice(-3000)}`);
  const [moto, ecr, controlPlane] = await Promise.all([
    startMoto(),
    startEcrStandIn(),
    startControlPlane(),
  ]);
  stops.push(
    () => controlPlane.stop(),
    () => ecr.stop(),
    () => moto.stop(),
  );
  const env = localAwsEnv({ records: moto.url, sts: moto.url, ecr: ecr.url, kms: moto.url });
  const keyArn = await testRecordKey(moto.url);
  // What the stack makes: the two record tables, and the functions told the record key.
  await createRecordTables(moto.url);
  env[ENV.recordKeyArn] = keyArn;
  const webhook = await startWebhookProcess({
    // The package's webhook bundle, as the stack deploys it.
    bundle: join(options.userDir, "node_modules/ecr-anywhere/dist/webhook/index.mjs"),
    // A short record TTL, so rotate-token's new URL works in a second, not a minute.
    env: { ...env, [ENV.recordTtlSeconds]: "1" },
    logFile: join(options.work, "webhook.log"),
  });
  // Its CA lives in a temporary folder of its own.
  stops.push(
    () => rm(dirname(webhook.caBundleFile), { recursive: true, force: true }),
    () => webhook.stop(),
  );
  // The deployed refresher, as Lambda would invoke it: the package's bundle, with its settings.
  const lambda = await startLambdaStandIn({
    [REFRESHER_FUNCTION]: {
      bundle: join(options.userDir, "node_modules/ecr-anywhere/dist/refresher/index.mjs"),
      env: { ...env },
    },
  });
  stops.push(() => lambda.stop());
  env.AWS_ENDPOINT_URL_LAMBDA = lambda.url;
  const config = new KubeConfig();
  config.loadFromFile(controlPlane.kubeconfigPath);
  console.log(`kube-apiserver ${controlPlane.server}, webhook ${webhook.url}, moto ${moto.url}`);
  return {
    kubeconfigPath: controlPlane.kubeconfigPath,
    env,
    keyArn,
    webhookUrl: webhook.url,
    caBundleFile: webhook.caBundleFile,
    core: config.makeApiClient(CoreV1Api),
    objects: KubernetesObjectApi.makeApiClient(config),
    admission: config.makeApiClient(AdmissionregistrationV1Api),
    rbac: config.makeApiClient(RbacAuthorizationV1Api),
    refresherInvocations: () => lambda.invocations.length,
  };
}

/** `ecr-anywhere <args>` as the user runs it: the installed bin, from the user's directory. */
async function cli(bed: TestBed, options: JourneyOptions, args: string[]): Promise<Ran> {
  const env = { ...process.env, ...bed.env, KUBECONFIG: bed.kubeconfigPath, PATH: options.path };
  const started = performance.now();
  const ran = await run("ecr-anywhere", args, { cwd: options.userDir, env });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`$ ecr-anywhere ${args.join(" ")}  → exit ${ran.code} (${seconds} s)`);
  return ran;
}

async function mustCli(bed: TestBed, options: JourneyOptions, args: string[]): Promise<Ran> {
  const ran = await cli(bed, options, args);
  options.check(
    ran.code === 0,
    `ecr-anywhere ${args[0]} exited ${ran.code}\n${ran.stdout.slice(-3000)}\n${ran.stderr.slice(-3000)}`,
  );
  return ran;
}

function onboardArgs(bed: TestBed, clusterId: string, namespace: string): string[] {
  return [
    "onboard",
    clusterId,
    "--registries",
    EAST,
    "--namespaces",
    namespace,
    "--webhook-url",
    bed.webhookUrl,
    "--record-key-arn",
    bed.keyArn,
    // What the stack's outputs AllowedRegistries and RefresherFunctionName say.
    "--allowed-registries",
    EAST,
    "--refresher-function",
    REFRESHER_FUNCTION,
    "--ca-bundle",
    bed.caBundleFile,
    // The API server calls from loopback here; for a real cluster, its egress addresses.
    "--allowed-source-cidrs",
    "127.0.0.1/32",
    "--verify-timeout",
    "30",
  ];
}

async function directJourney(bed: TestBed, options: JourneyOptions): Promise<void> {
  const { check } = options;
  const clusterId = "journey";
  await bed.core.createNamespace({ body: { metadata: { name: "apps" } } });
  const before = await clusterState(bed);
  const outside = onboardArgs(bed, clusterId, "apps").map((arg) => (arg === EAST ? WEST : arg));
  // Only --registries changes: the stack's allowedRegistries stay EAST.
  outside[outside.indexOf("--allowed-registries") + 1] = EAST;
  const refused = await cli(bed, options, outside);
  check(
    refused.code === 2 && refused.stderr.includes(WEST),
    `onboard with a registry outside allowedRegistries exited ${refused.code}: ${refused.stderr.slice(0, 600)}`,
  );
  check((await clusterState(bed)) === before, "a refused onboard changed the cluster");
  const invoked = bed.refresherInvocations();
  await mustCli(bed, options, onboardArgs(bed, clusterId, "apps"));
  check(
    bed.refresherInvocations() > invoked,
    "onboard did not ask the deployed refresher to refresh the cluster",
  );
  check(
    filledFor(await managedSecret(bed, "apps", "ecr-pull"), EAST),
    "after onboard, the webhook did not fill a managed Secret with credentials for the registry",
  );
  await expectHealthy(bed, options, clusterId, 1);
  const tokenBefore = await webhookUrlOf(bed);
  await mustCli(bed, options, ["rotate-token", clusterId, "--propagation-seconds", "3"]);
  check((await webhookUrlOf(bed)) !== tokenBefore, "rotate-token left the webhook URL's token");
  check(
    filledFor(await managedSecret(bed, "apps", "after-rotation"), EAST),
    "after rotate-token, a managed Secret was not filled",
  );
  await mustCli(bed, options, ["offboard", clusterId, "--yes"]);
  await expectClean(bed, options, before, clusterId);
  console.log("onboarded, filled, healthy, rotated and offboarded; the cluster is as it was");
}

async function gitOpsJourney(bed: TestBed, options: JourneyOptions): Promise<void> {
  const { check } = options;
  const clusterId = "journey-gitops";
  await bed.core.createNamespace({ body: { metadata: { name: "gitops" } } });
  const before = await clusterState(bed);
  const out = join(options.work, "gitops");
  await mustCli(bed, options, [
    ...onboardArgs(bed, clusterId, "gitops"),
    "--dry-run",
    "--out",
    out,
  ]);
  const files = (await readdir(out)).sort();
  check(
    ["namespaces.yaml", "rbac.yaml", "refresher-record.json", "webhook.yaml"].every((file) =>
      files.includes(file),
    ),
    `onboard --dry-run --out wrote ${files.join(", ")}`,
  );
  check((await clusterState(bed)) === before, "onboard --dry-run changed the cluster");
  // The documented order: labels and RBAC, the record, then the webhook.
  await applyFile(bed, join(out, "namespaces.yaml"));
  await applyFile(bed, join(out, "rbac.yaml"));
  await withRefresherToken(bed, join(out, "refresher-record.json"));
  await mustCli(bed, options, [
    "put-record",
    clusterId,
    "--from",
    out,
    "--record-key-arn",
    bed.keyArn,
  ]);
  await applyFile(bed, join(out, "webhook.yaml"));
  let secret: V1Secret | undefined;
  let attempt = 0;
  // The configuration reaches the admission chain asynchronously.
  await waitFor(
    async () => {
      secret = await managedSecret(bed, "gitops", `pull-${attempt++}`);
      return filledFor(secret, EAST);
    },
    30_000,
    "the rendered webhook configuration to fill a managed Secret",
  );
  await expectHealthy(bed, options, clusterId, attempt);
  await mustCli(bed, options, ["offboard", clusterId, "--yes"]);
  await expectClean(bed, options, before, clusterId);
  console.log(
    "rendered, applied, put-record, filled, healthy and offboarded; the cluster is as it was",
  );
}

/** `kubectl apply --server-side --field-manager=ecr-anywhere -f <file>`, as the files say. */
async function applyFile(bed: TestBed, file: string): Promise<void> {
  for (const document of parseAllDocuments(await readFile(file, "utf8"))) {
    const object = document.toJS() as KubernetesObject;
    await bed.objects.patch(
      object,
      undefined,
      undefined,
      "ecr-anywhere",
      true,
      PatchStrategy.ServerSideApply,
    );
  }
}

/** The step the GitOps page leaves to the user: the refresher's token into its record file. */
async function withRefresherToken(bed: TestBed, file: string): Promise<void> {
  const { status } = await bed.core.createNamespacedServiceAccountToken({
    namespace: "ecr-anywhere",
    name: "ecr-anywhere-refresher",
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const text = await readFile(file, "utf8");
  await writeFile(file, text.replace("REPLACE-WITH-REFRESHER-TOKEN", status?.token ?? ""));
}

/** A managed Secret holding a placeholder, as a user creates it: the webhook's answer. */
function managedSecret(bed: TestBed, namespace: string, name: string): Promise<V1Secret> {
  return bed.core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name, labels: { [names.managedLabel]: "true" } },
      type: "kubernetes.io/dockerconfigjson",
      data: { [DOCKER_CONFIG_JSON_KEY]: Buffer.from("FAKE").toString("base64") },
    },
  });
}

function filledFor(secret: V1Secret, host: string): boolean {
  const text = Buffer.from(secret.data?.[DOCKER_CONFIG_JSON_KEY] ?? "", "base64").toString();
  try {
    const auths = (JSON.parse(text) as { auths?: Record<string, { password?: string }> }).auths;
    return (auths?.[host]?.password?.length ?? 0) > 0;
  } catch {
    return false;
  }
}

async function webhookUrlOf(bed: TestBed): Promise<string | undefined> {
  const configurations = await bed.admission.listMutatingWebhookConfiguration();
  return configurations.items.flatMap((item) => item.webhooks ?? [])[0]?.clientConfig.url;
}

/** `status <id> -o json`: exit 0, the cluster reachable with its managed Secrets, no problem. */
async function expectHealthy(
  bed: TestBed,
  options: JourneyOptions,
  clusterId: string,
  managed: number,
): Promise<void> {
  const ran = await mustCli(bed, options, ["status", clusterId, "--output", "json"]);
  const report = JSON.parse(ran.stdout) as {
    ok: boolean;
    clusters: {
      clusterId: string;
      reachable: boolean;
      managedSecrets: number;
      problems: string[];
    }[];
  };
  const cluster = report.clusters.find((entry) => entry.clusterId === clusterId);
  options.check(
    report.ok && cluster?.reachable === true && cluster.managedSecrets >= managed,
    `status reported ${ran.stdout.slice(0, 1500)}`,
  );
}

/**
 * After offboard: the cluster holds what it held before onboard (a namespace deleted but still
 * terminating counts as gone: the test bed runs no namespace controller), and the record is gone.
 */
async function expectClean(
  bed: TestBed,
  options: JourneyOptions,
  before: string,
  clusterId: string,
): Promise<void> {
  await finishTerminatingNamespaces(bed);
  const after = await clusterState(bed);
  options.check(
    after === before,
    `offboard left the cluster changed:\n  before ${before}\n  after  ${after}`,
  );
  const status = await cli(bed, options, ["status", clusterId, "--output", "json"]);
  options.check(
    status.code === 1 && /no cluster record/.test(status.stdout),
    `after offboard, status found a record of ${clusterId}: ${status.stdout.slice(0, 600)}`,
  );
}

/**
 * What kube-controller-manager's namespace controller does with a deleted namespace (the test bed
 * runs none): removes what is left in it, then finalizes it.
 */
async function finishTerminatingNamespaces(bed: TestBed): Promise<void> {
  for (const namespace of (await bed.core.listNamespace()).items) {
    const name = namespace.metadata?.name ?? "";
    if (!namespace.metadata?.deletionTimestamp) continue;
    const [accounts, roles, bindings] = await Promise.all([
      bed.core.listNamespacedServiceAccount({ namespace: name }),
      bed.rbac.listNamespacedRole({ namespace: name }),
      bed.rbac.listNamespacedRoleBinding({ namespace: name }),
    ]);
    for (const { metadata } of accounts.items)
      await bed.core.deleteNamespacedServiceAccount({
        namespace: name,
        name: metadata?.name ?? "",
      });
    for (const { metadata } of roles.items)
      await bed.rbac.deleteNamespacedRole({ namespace: name, name: metadata?.name ?? "" });
    for (const { metadata } of bindings.items)
      await bed.rbac.deleteNamespacedRoleBinding({ namespace: name, name: metadata?.name ?? "" });
    await bed.core.replaceNamespaceFinalize({
      name,
      body: { ...namespace, spec: { finalizers: [] } },
    });
  }
}

/**
 * What onboard may change and offboard must restore, as one comparable text: webhook and admission
 * policy configurations, cluster-wide and namespaced RBAC, ServiceAccounts, namespaces and their
 * labels (the API server's own `system:` objects aside).
 */
async function clusterState(bed: TestBed): Promise<string> {
  const named = (items: { metadata?: { name?: string; namespace?: string } }[]) =>
    items
      .map(
        ({ metadata }) => `${metadata?.namespace ? `${metadata.namespace}/` : ""}${metadata?.name}`,
      )
      .filter((name) => !/(^|\/)system:/.test(name))
      .sort();
  const [
    webhooks,
    policies,
    bindings,
    clusterRoles,
    clusterBindings,
    roles,
    roleBindings,
    accounts,
    namespaces,
  ] = await Promise.all([
    bed.admission.listMutatingWebhookConfiguration(),
    bed.admission.listValidatingAdmissionPolicy(),
    bed.admission.listValidatingAdmissionPolicyBinding(),
    bed.rbac.listClusterRole(),
    bed.rbac.listClusterRoleBinding(),
    bed.rbac.listRoleForAllNamespaces(),
    bed.rbac.listRoleBindingForAllNamespaces(),
    bed.core.listServiceAccountForAllNamespaces(),
    bed.core.listNamespace(),
  ]);
  return JSON.stringify({
    webhooks: named(webhooks.items),
    policies: named(policies.items),
    policyBindings: named(bindings.items),
    clusterRoles: named(clusterRoles.items),
    clusterRoleBindings: named(clusterBindings.items),
    roles: named(roles.items),
    roleBindings: named(roleBindings.items),
    serviceAccounts: named(accounts.items),
    namespaces: namespaces.items
      .map(({ metadata }) => `${metadata?.name}${JSON.stringify(metadata?.labels ?? {})}`)
      .sort(),
  });
}
