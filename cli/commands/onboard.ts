/**
 * `ecr-anywhere onboard`: registers one cluster end to end. Checks before it changes anything,
 * applies in an order where a failure never blocks writes of unrelated Secrets, is idempotent, and
 * finishes by proving the round trip through the real API server.
 */
import { randomBytes } from "node:crypto";
import type { KubernetesObject } from "@kubernetes/client-node";
import { ClusterApi } from "../../functions/adapters/kubernetes.ts";
import { sha256Hex } from "../../functions/core/auth.ts";
import {
  type ContractNames,
  contractNames,
  DEFAULT_LABEL_PREFIX,
  DOCKER_CONFIG_JSON_KEY,
} from "../../functions/core/contract.ts";
import { withServer } from "../../functions/core/kubeconfig.ts";
import { parseRfc3339 } from "../../functions/core/time.ts";
import { AwsProblem, RecordStore, type StoredRecord } from "../adapters/aws.ts";
import { type KubeconfigChoice, UserCluster } from "../adapters/user-cluster.ts";
import { InputError } from "../core/inputs.ts";
import {
  buildClusterRecord,
  type ConflictingWebhook,
  conflictingWebhooks,
  describeAccess,
  enabledNamespaceLabel,
  keepRefresherKubeconfig,
  type OnboardInputs,
  onboardAccess,
  REFRESHER_NAMESPACE,
  REFRESHER_SERVICE_ACCOUNT,
  REFRESHER_TOKEN_SECONDS,
  refresherKubeconfig,
  registryPartitionProblems,
  tokenInWebhookUrl,
  WEBHOOK_CONFIGURATION_NAME,
  type WebhookToken,
  webhookTokenFrom,
  webhookUrl,
} from "../core/onboard-plan.ts";
import { emit, need, type OutputFormat, Problem, redact, runSteps, type Step } from "../ui.ts";
import {
  ourWebhookConfiguration,
  refresherObjects,
  webhookConfigurationRef,
} from "./cluster-objects.ts";
import { type AwsTarget, type Endpoints, resolveEndpoints } from "./endpoints.ts";
import { onboardDryRun } from "./onboard-dry-run.ts";

export interface OnboardOptions extends OnboardInputs {
  readonly aws: AwsTarget;
  readonly kube: KubeconfigChoice;
  readonly caBundleFile?: string | undefined;
  readonly apiServerUrl?: string | undefined;
  readonly labelPrefix?: string | undefined;
  readonly rotateToken: boolean;
  readonly replaceExisting: boolean;
  readonly dryRun: boolean;
  /** Where the webhook token travels: the URL path, or a header from kube-apiserver's admission kubeconfig. */
  readonly webhookAuth: "url" | "header";
  /** With header auth: where the credentials kubeconfig will live on the API server's host. */
  readonly admissionKubeconfigPath: string;
  readonly out?: string | undefined;
  readonly verifyTimeoutSeconds: number;
  readonly output: OutputFormat;
}

interface OnboardContext {
  endpoints?: Endpoints;
  cluster?: UserCluster;
  caData?: string;
  existing?: StoredRecord | undefined;
  store?: RecordStore;
  currentToken?: string | undefined;
  conflicts?: ConflictingWebhook[];
  kubeconfig?: string;
  token?: WebhookToken;
  verified?: VerifiedNamespace[];
}

export interface VerifiedNamespace {
  readonly namespace: string;
  readonly registries: string[];
  readonly expiresAt: string;
  readonly roundTripMs: number;
  readonly managedSecretsListed: number;
}

export async function onboard(options: OnboardOptions): Promise<void> {
  if (options.dryRun) return onboardDryRun(options);
  const prefix = options.labelPrefix ?? DEFAULT_LABEL_PREFIX;
  const names = contractNames(prefix);
  const clusterObjects = await refresherObjects(options);
  const context: OnboardContext = {};
  const steps: Step<OnboardContext>[] = [
    {
      title: "Check access, inputs and AWS before changing anything",
      run: async (ctx) => {
        // Local input first (exit 2 without a network call), then the cluster, then AWS.
        ctx.cluster = UserCluster.load(options.kube);
        ctx.caData = ctx.cluster.caData();
        ctx.endpoints = await resolveEndpoints(options.aws, options.caBundleFile);
        const outside = registryPartitionProblems(options.registries, ctx.endpoints.recordKeyArn);
        if (outside.length > 0) throw new InputError(`--registries: ${outside.join("; ")}`);
        const denied = await ctx.cluster.deniedAccess(
          onboardAccess(options, options.replaceExisting),
        );
        if (denied.length > 0)
          throw new Problem(
            `your Kubernetes identity may not: ${denied.map(describeAccess).join("; ")}. Use an identity with cluster-admin for onboarding`,
          );
        const missing = await ctx.cluster.missingNamespaces(options.namespaces);
        if (missing.length > 0)
          throw new InputError(
            `--namespaces: ${missing.join(", ")} ${missing.length === 1 ? "does" : "do"} not exist in the cluster (create ${missing.length === 1 ? "it" : "them"} first: kubectl create namespace ${missing.join(" ")})`,
          );
        const configurations = await ctx.cluster.webhookConfigurations();
        ctx.conflicts = conflictingWebhooks(configurations, names);
        if (ctx.conflicts.length > 0 && !options.replaceExisting)
          throw new Problem(
            `${ctx.conflicts.map((conflict) => `MutatingWebhookConfiguration ${conflict.configuration} (service ${conflict.service})`).join(", ")} already handles these labels (the original ECR Anywhere?). Two failurePolicy Fail webhooks would block every managed write when either is down: pass --replace-existing to replace it (see README, "Migrating from ECR Anywhere")`,
          );
        const ours = configurations.find((item) => item.name === WEBHOOK_CONFIGURATION_NAME);
        const urls = ours?.webhooks.map((webhook) => webhook.clientConfig.url) ?? [];
        if (ours && !urls.some((url) => tokenInWebhookUrl(url, options.clusterId)))
          throw new Problem(
            `this cluster already has a MutatingWebhookConfiguration ${WEBHOOK_CONFIGURATION_NAME} for another cluster id; offboard that one first, or check --context`,
          );
        ctx.currentToken = urls
          .map((url) => tokenInWebhookUrl(url, options.clusterId))
          .find(Boolean);
        if (ctx.currentToken) redact(ctx.currentToken);
        ctx.store = new RecordStore(ctx.endpoints.recordPrefix);
        const problems = await ctx.store.problems(ctx.endpoints.recordKeyArn);
        if (problems.length > 0) throw new AwsProblem(problems.join("; "));
        ctx.existing = await ctx.store.read(options.clusterId);
        return `permissions present, ${options.namespaces.length} namespace(s) found, record store and key reachable${ctx.existing?.record ? ", record exists" : ""}`;
      },
    },
    {
      title: "Apply the refresher's namespace, ServiceAccount and RBAC",
      run: async (ctx) => summarizeApply(await applyAll(need(ctx.cluster), clusterObjects)),
    },
    {
      title: "Refresher credentials (bound ServiceAccount token)",
      run: async (ctx) => {
        const server = options.apiServerUrl ?? need(ctx.cluster).server;
        const caData = need(ctx.caData);
        const existing = ctx.existing?.record?.kubeconfig;
        if (keepRefresherKubeconfig(existing, { server, caData }, Date.now())) {
          ctx.kubeconfig = existing;
          return "kept (the refresher renews it itself)";
        }
        const token = await need(ctx.cluster).requestToken(
          REFRESHER_NAMESPACE,
          REFRESHER_SERVICE_ACCOUNT,
          REFRESHER_TOKEN_SECONDS,
        );
        redact(token);
        ctx.kubeconfig = refresherKubeconfig({
          clusterId: options.clusterId,
          server,
          caData,
          token,
        });
        return `minted for ${server} (the refresher renews it itself)`;
      },
    },
    {
      title: "Webhook token and cluster record",
      run: async (ctx) => {
        const stored = ctx.existing?.record?.webhookTokenSha256 ?? [];
        const keep =
          !options.rotateToken &&
          ctx.currentToken !== undefined &&
          stored.includes(sha256Hex(ctx.currentToken));
        ctx.token = keep
          ? { token: need(ctx.currentToken), sha256: sha256Hex(need(ctx.currentToken)) }
          : webhookTokenFrom(randomBytes(32));
        redact(ctx.token.token);
        const record = buildClusterRecord(options, need(ctx.kubeconfig), [ctx.token.sha256]);
        const outcome = await need(ctx.store).write(
          record,
          need(ctx.endpoints).recordKeyArn,
          ctx.existing,
        );
        return `token ${keep ? "kept" : "generated (256 bits)"}; record ${need(ctx.store).nameOf(options.clusterId)} ${outcome}`;
      },
    },
    {
      title: "Webhook configuration and namespace labels",
      run: async (ctx) => {
        const cluster = need(ctx.cluster);
        const endpoints = need(ctx.endpoints);
        const replaced: string[] = [];
        // The old in-cluster webhook goes first: beside ours it would block writes whenever it is down.
        for (const configuration of new Set(
          (ctx.conflicts ?? []).map((item) => item.configuration),
        )) {
          await cluster.remove(webhookConfigurationRef(configuration));
          replaced.push(configuration);
        }
        const objects = [
          await ourWebhookConfiguration(
            webhookUrl(endpoints.webhookBase, options.clusterId, need(ctx.token).token),
            endpoints.caPem,
            prefix,
          ),
          ...options.namespaces.map((namespace) => enabledNamespaceLabel(namespace, names)),
        ];
        const summary = summarizeApply(await applyAll(cluster, objects as KubernetesObject[]));
        return replaced.length > 0 ? `${summary}; replaced ${replaced.join(", ")}` : summary;
      },
    },
    {
      title: "Verify: a dry-run managed Secret through the API server, and the refresher's access",
      run: async (ctx, progress) => {
        ctx.verified = await verify(ctx, options, names, progress);
        return ctx.verified
          .map((item) => `${item.namespace} ok in ${item.roundTripMs} ms`)
          .join(", ");
      },
    },
  ];
  try {
    const done = await runSteps(context, steps, options.output);
    const verified = context.verified ?? [];
    emit(
      options.output,
      {
        ok: true,
        clusterId: options.clusterId,
        changed: done.some(changedSomething),
        steps: done,
        verified,
      },
      () =>
        [
          "",
          done.some(changedSomething)
            ? `Cluster ${options.clusterId} is onboarded.`
            : `Cluster ${options.clusterId} was already onboarded: nothing changed.`,
          ...verified.map(
            (item) =>
              `  ${item.namespace}: credentials for ${item.registries.join(", ")} (expire ${item.expiresAt}), round trip ${item.roundTripMs} ms; the refresher lists ${item.managedSecretsListed} managed Secret(s) there`,
          ),
          "",
        ].join("\n"),
    );
  } finally {
    context.store?.close();
  }
}

function changedSomething(step: { outcome: string }): boolean {
  return /\b(created|configured|updated|restored|generated|minted|replaced|scheduled)\b/.test(
    step.outcome,
  );
}

async function applyAll(cluster: UserCluster, objects: readonly KubernetesObject[]) {
  const outcomes: string[] = [];
  for (const object of objects) outcomes.push(await cluster.apply(object));
  return outcomes;
}

function summarizeApply(outcomes: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const outcome of outcomes) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
  return [...counts].map(([outcome, count]) => `${count} ${outcome}`).join(", ");
}

/**
 * A dry-run managed Secret in each namespace must come back filled for every registry (retried
 * while the API server picks up the new configuration and warm webhooks their record), and the
 * refresher's own kubeconfig must list managed Secrets there.
 */
async function verify(
  ctx: OnboardContext,
  options: OnboardOptions,
  names: ContractNames,
  progress: (text: string) => void,
): Promise<VerifiedNamespace[]> {
  const cluster = need(ctx.cluster);
  const deadline = Date.now() + options.verifyTimeoutSeconds * 1000;
  const results: VerifiedNamespace[] = [];
  // Checked from here through the operator's route to the API server, with the refresher's token.
  const refresherView = options.apiServerUrl
    ? withServer(need(ctx.kubeconfig), cluster.server)
    : need(ctx.kubeconfig);
  for (const namespace of options.namespaces) {
    let lastError = "";
    let verified: VerifiedNamespace | undefined;
    while (!verified) {
      const started = performance.now();
      try {
        const secret = await cluster.dryRunManagedSecret(
          namespace,
          `ecr-anywhere-verify-${randomBytes(4).toString("hex")}`,
          names,
        );
        const roundTripMs = Math.round(performance.now() - started);
        const auths = registryHostsIn(secret.data?.[DOCKER_CONFIG_JSON_KEY]);
        const missing = options.registries.filter((host) => !auths.includes(host));
        const expiresAt = secret.metadata?.annotations?.[names.expiresAtAnnotation] ?? "";
        if (missing.length > 0 || parseRfc3339(expiresAt) === undefined) {
          lastError = `the dry-run Secret came back without credentials for ${missing.join(", ") || "expires_at"}`;
        } else {
          const listed = await new ClusterApi(
            refresherView,
            AbortSignal.timeout(20_000),
          ).managedSecrets(namespace, names.managedLabel);
          verified = {
            namespace,
            registries: options.registries.filter((host) => auths.includes(host)),
            expiresAt,
            roundTripMs,
            managedSecretsListed: listed.length,
          };
          break;
        }
      } catch (error) {
        lastError = (error as Error).message;
      }
      if (Date.now() > deadline)
        throw new Problem(
          `verification in namespace ${namespace} failed after ${options.verifyTimeoutSeconds} s: ${lastError}${/failed to call webhook: Forbidden/.test(lastError) ? FORBIDDEN_HINT : ""}`,
        );
      progress(`${namespace}: waiting for the webhook (${lastError})`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    results.push(verified);
  }
  return results;
}

/** The hosts a dockerconfigjson holds entries for; passwords are never read out. */
function registryHostsIn(base64: string | undefined): string[] {
  try {
    const config = JSON.parse(Buffer.from(base64 ?? "", "base64").toString("utf8")) as {
      auths?: Record<string, { password?: unknown }>;
    };
    return Object.entries(config.auths ?? {})
      .filter(([, entry]) => typeof entry.password === "string" && entry.password.length > 0)
      .map(([host]) => host);
  } catch {
    return [];
  }
}

/** `--dry-run`: every manifest and the record, written out; nothing in the cluster or AWS changes. */
const FORBIDDEN_HINT =
  " (the webhook refused this cluster's token: check that the stack reads records under the same --record-prefix, and that --allowed-source-cidrs holds the API server's egress address)";
