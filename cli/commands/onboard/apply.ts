/**
 * Onboarding into the cluster and AWS: checks before it changes anything, applies in an order
 * where a failure never blocks writes of unrelated Secrets, is idempotent, and finishes by proving
 * the round trip through the real API server.
 */
import { randomBytes } from "node:crypto";
import type { KubernetesObject } from "@kubernetes/client-node";
import { sha256Hex } from "../../../functions/core/auth.ts";
import type { ClusterRecord } from "../../../functions/core/cluster-record.ts";
import { SECRET_POLICY_MINIMUM_MINOR } from "../../../k8s/refresher-secret-policy.ts";
import { AwsProblem, type StoredRecord } from "../../adapters/aws.ts";
import { InputError } from "../../core/inputs.ts";
import { judgeServerVersion } from "../../core/kubernetes-versions.ts";
import {
  type ConflictingWebhook,
  conflictingWebhooks,
  describeAccess,
  isHeaderModeUrl,
  keepRefresherKubeconfig,
  onboardAccess,
  REFRESHER_NAMESPACE,
  REFRESHER_SERVICE_ACCOUNT,
  REFRESHER_TOKEN_SECONDS,
  refresherKubeconfig,
  tokenInWebhookUrl,
  WEBHOOK_CONFIGURATION_NAME,
  type WebhookToken,
  webhookTokenFrom,
  withRefresherState,
} from "../../core/onboard-plan.ts";
import type { Factory, OperatorCluster, Records } from "../../factory.ts";
import { need, Problem, redact, type StepRecord } from "../../ui.ts";
import { webhookConfigurationRef } from "../cluster-objects.ts";
import type { OnboardOptions, OnboardState, OnboardTarget } from "./target.ts";
import { type VerifiedNamespace, verifyRoundTrip } from "./verify.ts";

export class ClusterTarget implements OnboardTarget {
  readonly #options: OnboardOptions;
  readonly #factory: Factory;
  #store: Records | undefined;
  #existing: StoredRecord | undefined;
  #currentToken: string | undefined;
  #conflicts: ConflictingWebhook[] = [];
  #verified: VerifiedNamespace[] = [];

  constructor(options: OnboardOptions, factory: Factory) {
    this.#options = options;
    this.#factory = factory;
  }

  async check(state: OnboardState): Promise<string> {
    const options = this.#options;
    const cluster = need(state.cluster);
    const version = await cluster.serverVersion();
    const verdict = judgeServerVersion(version);
    if (verdict.kind === "refuse") throw new Problem(verdict.message);
    state.secretPolicy = version.major > 1 || version.minor >= SECRET_POLICY_MINIMUM_MINOR;
    await checkCluster(cluster, options, state.secretPolicy);
    const configurations = await cluster.webhookConfigurations();
    this.#conflicts = conflictingWebhooks(configurations, this.#factory.names);
    if (this.#conflicts.length > 0 && !options.replaceExisting)
      throw new Problem(
        `${this.#conflicts.map((conflict) => `MutatingWebhookConfiguration ${conflict.configuration} (service ${conflict.service})`).join(", ")} already handles these labels (the original ECR Anywhere?). Two failurePolicy Fail webhooks would block every managed write when either is down: pass --replace-existing to replace it (see docs/onboard.md, "Migrating from the original ECR Anywhere")`,
      );
    const ours = configurations.find((item) => item.name === WEBHOOK_CONFIGURATION_NAME);
    const urls = ours?.webhooks.map((webhook) => webhook.clientConfig.url) ?? [];
    const isOurs = (url: string | undefined) =>
      tokenInWebhookUrl(url, options.clusterId) !== undefined ||
      isHeaderModeUrl(url, options.clusterId);
    if (ours && !urls.some(isOurs))
      throw new Problem(
        `this cluster already has a MutatingWebhookConfiguration ${WEBHOOK_CONFIGURATION_NAME} for another cluster id; offboard that one first, or check --context`,
      );
    this.#currentToken = urls.map((url) => tokenInWebhookUrl(url, options.clusterId)).find(Boolean);
    if (this.#currentToken) redact(this.#currentToken);
    const endpoints = need(state.endpoints);
    this.#store = this.#factory.recordStore();
    const problems = await this.#store.problems(endpoints.recordKeyArn);
    if (problems.length > 0) throw new AwsProblem(problems.join("; "));
    this.#existing = await this.#store.read(options.clusterId);
    const narrowing = state.secretPolicy
      ? ""
      : `; Kubernetes ${version.major}.${version.minor} has no ValidatingAdmissionPolicy (1.${SECRET_POLICY_MINIMUM_MINOR}+), so the refresher's Secret writes are not narrowed to managed Secrets`;
    const untested = verdict.kind === "warn" ? `; warning: ${verdict.message}` : "";
    return `permissions present, ${options.namespaces.length} namespace(s) found, record store and key reachable${this.#existing?.record ? ", record exists" : ""}${narrowing}${untested}`;
  }

  async refresherKubeconfig(state: OnboardState): Promise<{ kubeconfig: string; outcome: string }> {
    const server = this.#options.apiServerUrl ?? need(state.cluster).server;
    const caData = need(state.caData);
    const kept = this.#existing?.record?.kubeconfig;
    if (keepRefresherKubeconfig(kept, { server, caData }, Date.now()))
      return { kubeconfig: need(kept), outcome: "kept (the refresher renews it itself)" };
    const token = await need(state.cluster).requestToken(
      REFRESHER_NAMESPACE,
      REFRESHER_SERVICE_ACCOUNT,
      REFRESHER_TOKEN_SECONDS,
    );
    redact(token);
    return {
      kubeconfig: refresherKubeconfig({
        clusterId: this.#options.clusterId,
        server,
        caData,
        token,
      }),
      outcome: `minted for ${server} (the refresher renews it itself)`,
    };
  }

  webhookToken(): { token: WebhookToken; kept: boolean } {
    const current = this.#currentToken;
    const stored = this.#existing?.record?.webhookTokenSha256 ?? [];
    if (!this.#options.rotateToken && current && stored.includes(sha256Hex(current)))
      return { token: { token: current, sha256: sha256Hex(current) }, kept: true };
    return { token: webhookTokenFrom(randomBytes(32)), kept: false };
  }

  async putRecord(state: OnboardState, record: ClusterRecord): Promise<string> {
    const store = need(this.#store);
    const written = withRefresherState(record, this.#existing?.record);
    const outcome = await store.write(written, need(state.endpoints).recordKeyArn, this.#existing);
    return `record ${store.locationOf(this.#options.clusterId)} ${outcome}`;
  }

  async putObjects(
    state: OnboardState,
    objects: readonly KubernetesObject[],
    replacesWebhook: boolean,
  ): Promise<string> {
    const cluster = need(state.cluster);
    const replaced: string[] = [];
    // The old in-cluster webhook goes right before ours: beside ours it would block writes whenever
    // it is down, and removed any earlier a failed step would leave the cluster with no webhook.
    const conflicts = replacesWebhook ? this.#conflicts : [];
    for (const configuration of new Set(conflicts.map((item) => item.configuration))) {
      await cluster.remove(webhookConfigurationRef(configuration));
      replaced.push(configuration);
    }
    if (replacesWebhook) this.#conflicts = [];
    const summary = summarizeApply(await applyAll(cluster, objects));
    return replaced.length > 0 ? `${summary}; replaced ${replaced.join(", ")}` : summary;
  }

  async verify(state: OnboardState, progress: (text: string) => void): Promise<string> {
    this.#verified = await verifyRoundTrip(state, this.#options, this.#factory, progress);
    return this.#verified
      .map((item) => `${item.namespace} ok in ${item.roundTripMs} ms`)
      .join(", ");
  }

  async report(_state: OnboardState, done: readonly StepRecord[]): Promise<void> {
    reportOnboarded(this.#options.clusterId, done, this.#verified, this.#factory);
  }

  close(): void {
    this.#store?.close();
  }
}

/** The operator may do everything onboard does, and every namespace exists. */
async function checkCluster(
  cluster: OperatorCluster,
  options: OnboardOptions,
  secretPolicy: boolean,
): Promise<void> {
  const denied = await cluster.deniedAccess(
    onboardAccess(options, options.replaceExisting, secretPolicy),
  );
  if (denied.length > 0)
    throw new Problem(
      `your Kubernetes identity may not: ${denied.map(describeAccess).join("; ")}. Use an identity with cluster-admin for onboarding`,
    );
  const missing = await cluster.missingNamespaces(options.namespaces);
  if (missing.length > 0)
    throw new InputError(
      `--namespaces: ${missing.join(", ")} ${missing.length === 1 ? "does" : "do"} not exist in the cluster (create ${missing.length === 1 ? "it" : "them"} first: kubectl create namespace ${missing.join(" ")})`,
    );
}

function reportOnboarded(
  clusterId: string,
  done: readonly StepRecord[],
  verified: readonly VerifiedNamespace[],
  factory: Factory,
): void {
  const changed = done.some(changedSomething);
  factory.printer.result({ ok: true, clusterId, changed, steps: done, verified }, () =>
    [
      "",
      changed
        ? `Cluster ${clusterId} is onboarded.`
        : `Cluster ${clusterId} was already onboarded: nothing changed.`,
      ...verified.map(
        (item) =>
          `  ${item.namespace}: credentials for ${item.registries.join(", ")} (expire ${item.expiresAt}), round trip ${item.roundTripMs} ms; the refresher lists ${item.managedSecretsListed} managed Secret(s) there`,
      ),
      "",
    ].join("\n"),
  );
}

function changedSomething(step: { outcome: string }): boolean {
  return /\b(created|configured|updated|restored|generated|minted|replaced|scheduled)\b/.test(
    step.outcome,
  );
}

async function applyAll(cluster: OperatorCluster, objects: readonly KubernetesObject[]) {
  const outcomes: string[] = [];
  for (const object of objects) outcomes.push(await cluster.apply(object));
  return outcomes;
}

function summarizeApply(outcomes: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const outcome of outcomes) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
  return [...counts].map(([outcome, count]) => `${count} ${outcome}`).join(", ");
}
