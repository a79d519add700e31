/**
 * `npm run demo`: the whole system on this machine with no AWS account. A real kube-apiserver and
 * etcd, moto for DynamoDB (the cluster record tables), STS and KMS, the ECR stand-in, the built
 * webhook bundle behind the function-URL server, and the real CLI and refresher bundle, told as a
 * short story.
 *
 *   npm run demo                  walk through, then keep running for your own kubectl (Ctrl-C, or
 *                                 closing the terminal, stops it and removes everything it made)
 *   npm run demo -- --no-wait     walk through and exit: 0 only if every step held
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
} from "@kubernetes/client-node";
import { ENV } from "../functions/core/config.ts";
import { contractNames, DOCKER_CONFIG_JSON_KEY } from "../functions/core/contract.ts";
import { parseRfc3339 } from "../functions/core/time.ts";
import { createRecordTables, localAwsEnv, testRecordKey } from "../testbed/aws-env.ts";
import { startControlPlane } from "../testbed/control-plane.ts";
import { startEcrStandIn } from "../testbed/ecr-stand-in.ts";
import { SCHEDULED_EVENT, startLambdaStandIn } from "../testbed/lambda-stand-in.ts";
import { startMoto } from "../testbed/moto.ts";
import { ensureMotoServer } from "../testbed/tools.ts";
import { startWebhookProcess } from "../testbed/webhook-process.ts";
import { buildLambdas } from "./build.ts";
import {
  BuildWatch,
  duration,
  PROGRESS_EVERY_MS,
  progressLine,
  REAL_CLUSTER_ONBOARD,
  stepLine,
} from "./demo-lines.ts";

const repo = join(import.meta.dirname, "..");
const cli = join(repo, "cli/ecr-anywhere.ts");
const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const WEST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const REFRESHER = "ecr-anywhere-refresher";
/** Short-lived stand-in tokens, so "time moving forward" takes seconds: stale after half of this. */
const TOKEN_SECONDS = 40;
const names = contractNames();
const noWait = process.argv.includes("--no-wait") || !process.stdin.isTTY;
const started = performance.now();

const bold = (text: string) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
const say = (text = "") => process.stdout.write(`${text}\n`);
const chapter = (title: string) => say(`\n${bold(title)}`);
class DemoFailure extends Error {}
const expect = (condition: boolean, what: string) => {
  if (!condition) throw new DemoFailure(what);
  say(`  ✔ ${what}`);
};

let env: Record<string, string> = {};
let kubeconfigPath = "";
const work = await mkdtemp(join(tmpdir(), "ecr-anywhere-demo-"));
const stops: (() => Promise<unknown>)[] = [];
let stopping: Promise<void> | undefined;
/** CLI and refresher runs in flight: a clean-up must not leave one running after the demo. */
const running = new Set<ChildProcess>();
const cleanUp = () => {
  stopping ??= (async () => {
    await Promise.all([...running].map(stopChild));
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  })();
  return stopping;
};
// Ctrl-C, a kill, and closing the terminal (SIGHUP) all stop what the demo started. Without a
// handler Node dies at once on SIGHUP, leaving etcd and kube-apiserver (their own sessions, so the
// terminal's hangup never reaches them) and the temporary folder with a system:masters kubeconfig.
for (const [signal, exitCode] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
  ["SIGHUP", 129],
] as const)
  process.once(
    signal,
    () =>
      void cleanUp().then(() => {
        say(
          `\n${signal}: stopped etcd, kube-apiserver, moto, the ECR stand-in and the webhook, and removed the demo's temporary files (its admin kubeconfig included).`,
        );
        process.exit(exitCode);
      }),
  );
// Once the terminal is gone every write fails (EIO): that must not end the process mid-clean-up.
process.stdout.on("error", () => undefined);
process.stderr.on("error", () => undefined);

try {
  await demo();
  say(`\n${bold("Every step held.")} (${duration(performance.now() - started)} in all)`);
  if (!noWait) await keepRunning();
} catch (error) {
  process.stderr.write(
    `\ndemo failed: ${error instanceof DemoFailure ? `expected ${error.message}` : (error as Error).message}\n`,
  );
  process.exitCode = 1;
} finally {
  await cleanUp();
}

async function demo(): Promise<void> {
  chapter(
    "Starting the local system (real kube-apiserver and etcd, moto, ECR stand-in, webhook bundle)",
  );
  await step("moto_server ready", ensureMotoServer, (ms) =>
    progressLine("setting up moto_server", ms),
  );
  await buildControlPlane();
  await step(
    "built the Lambda bundles",
    () => buildLambdas(join(work, "dist")),
    (ms) => progressLine("bundling the Lambdas", ms),
  );
  const startedAt = performance.now();
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
  ecr.expiresInSeconds = TOKEN_SECONDS;
  kubeconfigPath = controlPlane.kubeconfigPath;
  env = localAwsEnv({ records: moto.url, sts: moto.url, ecr: ecr.url, kms: moto.url });
  const keyArn = await testRecordKey(moto.url);
  // What the stack makes: the two record tables, and the refresher told the record key.
  await createRecordTables(moto.url);
  env[ENV.recordKeyArn] = keyArn;
  const webhook = await startWebhookProcess({
    bundle: join(work, "dist/webhook/index.mjs"),
    env,
    logFile: join(work, "webhook.log"),
  });
  // Its CA lives in a temporary folder of its own.
  stops.push(
    () => rm(dirname(webhook.caBundleFile), { recursive: true, force: true }),
    () => webhook.stop(),
  );
  // The deployed refresher, as Lambda would invoke it: its bundle, with the refresher's settings.
  const lambda = await startLambdaStandIn({
    [REFRESHER]: { bundle: join(work, "dist/refresher/index.mjs"), env: { ...env } },
  });
  stops.push(() => lambda.stop());
  env.AWS_ENDPOINT_URL_LAMBDA = lambda.url;
  say(
    stepLine(
      `started kube-apiserver ${controlPlane.server}, webhook ${webhook.url}, moto ${moto.url}, Lambda ${lambda.url}`,
      performance.now() - startedAt,
    ),
  );

  const config = new KubeConfig();
  config.loadFromFile(kubeconfigPath);
  const core = config.makeApiClient(CoreV1Api);
  const objects = KubernetesObjectApi.makeApiClient(config);
  await core.createNamespace({ body: { metadata: { name: "apps" } } });

  chapter("1. Onboard the cluster with the CLI, exactly as for a real one");
  const onboardArgs = [
    "onboard",
    "demo",
    "--registries",
    `${EAST},${WEST}`,
    "--namespaces",
    "apps",
    "--webhook-url",
    webhook.url,
    "--record-key-arn",
    keyArn,
    // What the stack's outputs AllowedRegistries and RefresherFunctionName say.
    "--allowed-registries",
    `${EAST},${WEST}`,
    "--refresher-function",
    REFRESHER,
    "--ca-bundle",
    webhook.caBundleFile,
    "--kubeconfig",
    kubeconfigPath,
    // The API server calls from loopback here; for a real cluster, its egress addresses.
    "--allowed-source-cidrs",
    "127.0.0.1/32",
    "--verify-timeout",
    "30",
  ];
  say(`  $ ecr-anywhere ${onboardArgs.join(" ")}`);
  say(`    (against your cluster and stack: ecr-anywhere ${REAL_CLUSTER_ONBOARD.join(" ")})`);
  expect(
    (await runCli(onboardArgs)) === 0,
    "onboard exits 0 after verifying the round trip and the refresher's own refresh of the cluster",
  );

  chapter(
    "2. The original ECR Anywhere quick start: a labelled namespace and a managed Secret holding FAKE",
  );
  await objects.patch(
    {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "apps", labels: { [names.namespaceLabel]: "enabled" } },
    },
    undefined,
    undefined,
    "demo-user",
    true,
    PatchStrategy.ServerSideApply,
  );
  const created = await core.createNamespacedSecret({
    namespace: "apps",
    body: {
      metadata: {
        name: "ecr-pull",
        labels: { [names.managedLabel]: "true" },
        annotations: { [names.registriesAnnotation]: EAST },
      },
      type: "kubernetes.io/dockerconfigjson",
      data: { [DOCKER_CONFIG_JSON_KEY]: Buffer.from("FAKE").toString("base64") },
    },
  });
  show(created);
  expect(sameHosts(created, [EAST]), "the Secret was filled for the registry it asked for");

  chapter("3. Add a second region through the registries annotation");
  const twoRegions = await core.patchNamespacedSecret(
    {
      namespace: "apps",
      name: "ecr-pull",
      body: { metadata: { annotations: { [names.registriesAnnotation]: `${EAST},${WEST}` } } },
    },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
  show(twoRegions);
  expect(sameHosts(twoRegions, [EAST, WEST]), "both regions' credentials are in the Secret");

  chapter(
    `4. Time moves forward: the stand-in's tokens live ${TOKEN_SECONDS} s, so the Secret is stale after half of that`,
  );
  const before = expiresAt(twoRegions);
  const staleAt = (updatedAt(twoRegions) ?? Date.now()) + (TOKEN_SECONDS / 2) * 1000;
  say(`  waiting ${Math.max(0, Math.ceil((staleAt - Date.now()) / 1000))} s for that`);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, staleAt - Date.now())));
  say("  the Secret is stale now; one scheduled refresher run, from its bundle:");
  const metrics = await runRefresher();
  say(
    `  refresher run: ${Object.entries(metrics)
      .map(([name, value]) => `${name}=${value}`)
      .join(", ")}`,
  );
  const refreshed = await core.readNamespacedSecret({ namespace: "apps", name: "ecr-pull" });
  show(refreshed);
  expect(
    (metrics.SecretsRefreshed ?? 0) >= 1 && (metrics.RefreshFailures ?? 0) === 0,
    "the refresher refreshed the stale Secret, with no failures",
  );
  expect((expiresAt(refreshed) ?? 0) > (before ?? 0), "expires_at moved forward");

  chapter("5. ecr-anywhere status");
  expect((await runCli(["status"])) === 0, "status finds nothing wrong");
}

async function buildControlPlane(): Promise<void> {
  say(
    "  kube-apiserver and etcd from the Go module proxy (the first build takes a few minutes; cached after)",
  );
  const watch = new BuildWatch();
  const code = await step(
    "kube-apiserver and etcd ready",
    () =>
      run("bash", [join(repo, "scripts/build-control-plane.sh")], {
        stdout: "ignore",
        stderr: (text) => {
          watch.observe(text);
          process.stdout.write(text.replace(/^(?!$)/gm, "    · "));
        },
      }),
    (ms) => watch.progress() ?? progressLine("setting up the build", ms),
  );
  if (code !== 0) throw new Error("the control plane did not build (see the lines above)");
}

/** Runs one step of the set-up, saying every few seconds what it is doing, then its own time. */
async function step<T>(
  done: string,
  action: () => Promise<T>,
  progress: (elapsedMs: number) => string,
): Promise<T> {
  const stepStarted = performance.now();
  const ticker = setInterval(
    () => say(progress(performance.now() - stepStarted)),
    PROGRESS_EVERY_MS,
  );
  try {
    const result = await action();
    say(stepLine(done, performance.now() - stepStarted));
    return result;
  } finally {
    clearInterval(ticker);
  }
}

function runCli(args: string[]): Promise<number> {
  return run(process.execPath, [cli, ...args], {
    env: { ...env, KUBECONFIG: kubeconfigPath },
    stdout: "indent",
    stderr: "indent",
  });
}

/** One scheduled refresher invocation, from its bundle in a fresh process; returns its metrics. */
async function runRefresher(): Promise<Record<string, number>> {
  const events = join(work, "refresher-events.json");
  await writeFile(events, JSON.stringify([SCHEDULED_EVENT]));
  let output = "";
  const code = await run(
    process.execPath,
    [join(repo, "scripts/invoke-bundle.ts"), join(work, "dist/refresher/index.mjs")],
    {
      env,
      stdinFile: events,
      stdout: (text) => {
        output += text;
      },
      stderr: "ignore",
    },
  );
  if (code !== 0) throw new Error(`the refresher bundle exited ${code}`);
  const metrics: Record<string, number> = {};
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    const document = JSON.parse(line) as {
      _aws?: { CloudWatchMetrics?: { Metrics?: { Name: string }[] }[] };
    } & Record<string, unknown>;
    // Fleet totals, summed over the run's documents (one cluster here).
    for (const directive of document._aws?.CloudWatchMetrics ?? [])
      for (const { Name } of directive.Metrics ?? [])
        metrics[Name] = (metrics[Name] ?? 0) + Number(document[Name]);
  }
  return metrics;
}

async function keepRunning(): Promise<void> {
  say(`\n${bold("Everything keeps running.")} Try it with your own kubectl:`);
  say(`  export KUBECONFIG=${kubeconfigPath}`);
  say("  kubectl get secret ecr-pull -n apps -o yaml");
  say(
    "  kubectl create secret docker-registry more -n apps --docker-server=x --docker-username=x --docker-password=x \\",
  );
  say(
    `    && kubectl label secret more -n apps ${names.managedLabel}=true --overwrite   # the label sends it through the webhook`,
  );
  say(
    `The refresher runs every ${TOKEN_SECONDS / 4} s meanwhile (the stand-in's tokens are short). Ctrl-C stops and cleans up.`,
  );
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, (TOKEN_SECONDS / 4) * 1000));
    await runRefresher().catch((error: Error) => say(`  refresher: ${error.message}`));
  }
}

/** The registry entries of a Secret's dockerconfigjson (empty while it holds the placeholder). */
function authsOf(secret: V1Secret): Record<string, { password?: string }> {
  const text = Buffer.from(secret.data?.[DOCKER_CONFIG_JSON_KEY] ?? "", "base64").toString("utf8");
  try {
    return (JSON.parse(text) as { auths?: Record<string, { password?: string }> }).auths ?? {};
  } catch {
    return {};
  }
}

function show(secret: V1Secret): void {
  const annotations = secret.metadata?.annotations ?? {};
  say(
    `  Secret apps/${secret.metadata?.name}: expires_at ${annotations[names.expiresAtAnnotation]}, updated_at ${annotations[names.updatedAtAnnotation]}`,
  );
  for (const [host, entry] of Object.entries(authsOf(secret)))
    say(
      `    ${host}  username AWS, password ${"•".repeat(8)} (${entry.password?.length ?? 0} characters)`,
    );
}

function hostsOf(secret: V1Secret): string[] {
  return Object.keys(authsOf(secret)).sort();
}

function sameHosts(secret: V1Secret, hosts: string[]): boolean {
  return JSON.stringify(hostsOf(secret)) === JSON.stringify([...hosts].sort());
}

function expiresAt(secret: V1Secret): number | undefined {
  return parseRfc3339(secret.metadata?.annotations?.[names.expiresAtAnnotation]);
}

function updatedAt(secret: V1Secret): number | undefined {
  return parseRfc3339(secret.metadata?.annotations?.[names.updatedAtAnnotation]);
}

type Sink = "ignore" | "indent" | ((text: string) => void);

/** Runs a program, sending its output where the story wants it; resolves with the exit code. */
function run(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; stdinFile?: string; stdout: Sink; stderr: Sink },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(command, args, {
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const sink = (target: Sink) => (chunk: Buffer) => {
      const text = chunk.toString();
      if (target === "ignore") return;
      if (typeof target === "function") return target(text);
      process.stdout.write(text.replace(/^(?!$)/gm, "    "));
    };
    child.stdout?.on("data", sink(options.stdout));
    child.stderr?.on("data", sink(options.stderr));
    if (options.stdinFile) {
      void import("node:fs").then(({ createReadStream }) =>
        createReadStream(options.stdinFile ?? "").pipe(child.stdin ?? process.stdin),
      );
    } else child.stdin?.end();
    running.add(child);
    child.once("error", reject);
    child.once("exit", (code) => {
      running.delete(child);
      resolve(code ?? 1);
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}
