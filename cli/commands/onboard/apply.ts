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
import { plannedChanges, refOf, summarizePlan } from "../../core/cluster-plan.ts";
import { InputError } from "../../core/inputs.ts";
import { judgeServerVersion } from "../../core/kubernetes-versions.ts";
import {
  buildClusterRecord,
  type ConflictingWebhook,
  canonicalJson,
  conflictingWebhooks,
  describeAccess,
  isHeaderModeUrl,
  keepRefresherKubeconfig,
  ONBOARD_STEPS,
  type OnboardFindings,
  onboardAccess,
  planOnboard,
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
import { PlanRun } from "../plan-run.ts";
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
  #run: PlanRun | undefined;
  /** Whether the stored refresher kubeconfig is kept, decided by the plan. */
  #keepKubeconfig = false;

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

  get run(): PlanRun | undefined {
    return this.#run;
  }

  /** Reads every object the run wants and the record, then plans (cli/core/onboard-plan.ts). */
  async plan(state: OnboardState): Promise<string> {
    const cluster = need(state.cluster);
    const wanted = need(state.wanted);
    const found = (objects: readonly KubernetesObject[]) =>
      Promise.all(
        objects.map(async (object) => ({ wanted: object, existing: await cluster.read(object) })),
      );
    this.#run = new PlanRun(
      planOnboard({
        clusterId: this.#options.clusterId,
        context: cluster.config.currentContext,
        records: this.#factory.records,
        refresher: await found(wanted.refresher),
        webhook: await found(wanted.webhook),
        replaced: [...new Set(this.#conflicts.map((item) => item.configuration))].map((name) =>
          refOf(webhookConfigurationRef(name)),
        ),
        record: this.#recordFinding(state),
      }),
    );
    return summarizePlan(this.#run.plan);
  }

  /** The stored record beside what this run would write. */
  #recordFinding(state: OnboardState): OnboardFindings["record"] {
    const existing = this.#existing;
    const kept = existing?.record?.kubeconfig;
    const server = this.#options.apiServerUrl ?? need(state.cluster).server;
    // Decided once, here: the credentials step then keeps or mints as planned.
    this.#keepKubeconfig = keepRefresherKubeconfig(
      kept,
      { server, caData: need(state.caData) },
      Date.now(),
    );
    if (!existing) return "absent";
    if (existing.deleted) return "deleted";
    const same =
      this.#keepKubeconfig &&
      state.tokenKept === true &&
      existing.kmsKeyId === need(state.endpoints).recordKeyArn &&
      canonicalJson(
        withRefresherState(
          buildClusterRecord(this.#options, need(kept), [need(state.token).sha256]),
          existing.record,
        ),
      ) === canonicalJson(existing.record);
    return same ? "same" : "differs";
  }

  async refresherKubeconfig(state: OnboardState): Promise<{ kubeconfig: string; outcome: string }> {
    const server = this.#options.apiServerUrl ?? need(state.cluster).server;
    const caData = need(state.caData);
    const kept = this.#existing?.record?.kubeconfig;
    if (this.#keepKubeconfig && kept)
      return { kubeconfig: kept, outcome: "kept (the refresher renews it itself)" };
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
    const [outcome] = await need(this.#run).stepOutcomes(ONBOARD_STEPS.record, undefined, () =>
      store.write(written, need(state.endpoints).recordKeyArn, this.#existing),
    );
    return `record ${store.locationOf(this.#options.clusterId)} ${outcome ?? "unchanged"}`;
  }

  async putObjects(state: OnboardState, part: "refresher" | "webhook"): Promise<string> {
    const cluster = need(state.cluster);
    const run = need(this.#run);
    const outcome = await run.step(ONBOARD_STEPS[part], cluster);
    const replaced = run.plan.changes
      .filter((change) => change.step === ONBOARD_STEPS[part] && change.action === "remove")
      .map((change) => change.ref.name);
    return replaced.length > 0 ? `${outcome}; replaced ${replaced.join(", ")}` : outcome;
  }

  async verify(state: OnboardState, progress: (text: string) => void): Promise<string> {
    this.#verified = await verifyRoundTrip(state, this.#options, this.#factory, progress);
    return this.#verified
      .map((item) => `${item.namespace} ok in ${item.roundTripMs} ms`)
      .join(", ");
  }

  async report(_state: OnboardState, done: readonly StepRecord[]): Promise<void> {
    reportOnboarded(this.#options.clusterId, done, this.#verified, this.#factory, need(this.#run));
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
  run: PlanRun,
): void {
  const changed = done.some(changedSomething);
  const plan = plannedChanges(run.plan);
  factory.printer.result({ ok: true, clusterId, changed, plan, steps: done, verified }, () =>
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
  return /\b(created|configured|updated|restored|generated|minted|replaced|deleted)\b/.test(
    step.outcome,
  );
}
