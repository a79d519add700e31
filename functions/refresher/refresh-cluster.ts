/**
 * One cluster's refresh: renew the refresher's own credentials when due, ensure the Secrets the
 * record asks for, find stale managed Secrets and mark them, so the API server sends each one
 * through the webhook. Used by the inline refresher and by the fan-out worker alike.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { StoredClusterRecord } from "../adapters/cluster-record-catalog.ts";
import { type ClusterApi, KubernetesError, type ManagedSecret } from "../adapters/kubernetes.ts";
import {
  type RefresherRecord,
  type RefresherRecordChange,
  readOpenFailures,
} from "../core/cluster-record.ts";
import type { RefresherConfig } from "../core/config.ts";
import {
  checkKubeconfig,
  needsRenewal,
  serviceAccountToken,
  withToken,
} from "../core/kubeconfig.ts";
import { backoffMs, isTransientMarkFailure } from "../core/retry.ts";
import { boundProblems, sanitize } from "../core/sanitize.ts";
import { isStale, secretTimes } from "../core/staleness.ts";
import { toRfc3339 } from "../core/time.ts";
import { type ClusterShare, type MarkBudget, SLOT_EXPIRED } from "../lib/mark-budget.ts";
import { ClusterEvents } from "./cluster-events.ts";

export interface ClusterReport {
  readonly clusterId: string;
  /** False when anything failed; `problems` says what. */
  readonly ok: boolean;
  readonly problems: readonly string[];
  readonly secretsManaged: number;
  readonly secretsStale: number;
  readonly secretsRefreshed: number;
  readonly refreshFailures: number;
  /** Least time left on any managed Secret after this run; undefined when there are none. */
  readonly minRemainingSeconds: number | undefined;
  readonly secretsCreated: number;
  readonly serviceAccountsLinked: number;
  readonly credentialsRenewed: boolean;
  readonly apiCalls: number;
  /** Marks tried again after a transient failure. */
  readonly markRetries: number;
  /** Kubernetes Events written in the cluster (failures, recoveries, unmet ensures). */
  readonly eventsRecorded: number;
  /** The first Event that could not be written, and why (it never fails the run). */
  readonly eventProblem?: string | undefined;
}

export interface RefreshClusterDependencies {
  readonly config: RefresherConfig;
  readonly now: () => number;
  readonly clusterApi: (kubeconfig: string, signal: AbortSignal) => ClusterApi;
  /**
   * Shared by every cluster of an invocation: `config.markConcurrency` marks at once, each cluster
   * at most its fair share, and no mark holding its slot past the webhook's timeout. Undefined: this
   * invocation has no share of the budget (a one-cluster check beside a budget with no slot to
   * spare), so stale Secrets are counted and left to the scheduled run.
   */
  readonly markBudget: MarkBudget | undefined;
  /** For the backoff's jitter; tests pin it. */
  readonly random?: () => number;
  /**
   * Writes the refresher's change (renewed kubeconfig, open failures) into its item as stored now,
   * keeping every other field (`RefresherRecordTable.update`); returns the record as written.
   */
  readonly saveRecord: (
    stored: StoredClusterRecord,
    change: RefresherRecordChange,
    signal: AbortSignal,
  ) => Promise<StoredClusterRecord>;
}

export async function refreshCluster(
  stored: StoredClusterRecord,
  deps: RefreshClusterDependencies,
  signal: AbortSignal,
): Promise<ClusterReport> {
  const { record } = stored;
  const { names } = deps.config;
  const kubeconfigCheck = checkKubeconfig(record.kubeconfig, {
    allowLocalServers: deps.config.allowLocalApiServers,
  });
  if (!kubeconfigCheck.ok) return failedReport(record.clusterId, [kubeconfigCheck.error]);

  const api = deps.clusterApi(record.kubeconfig, signal);
  const events = new ClusterEvents(api, {
    labelPrefix: names.labelPrefix,
    clusterId: record.clusterId,
    now: deps.now,
    openFailures: readOpenFailures(record.refresher),
  });
  const problems: string[] = [];
  // A renewal bumps the item's revision: the state written later starts from what it wrote.
  const renewed = await renewCredentials(stored, api, deps, signal).catch((error: unknown) => {
    problems.push(`renewing the refresher's token failed: ${message(error)}`);
    return undefined;
  });
  const credentialsRenewed = renewed !== undefined;

  let enabled: string[];
  try {
    enabled = await api.enabledNamespaces(names.namespaceLabel);
  } catch (error) {
    return {
      ...failedReport(record.clusterId, [...problems, message(error)]),
      credentialsRenewed,
      apiCalls: api.calls,
    };
  }

  const ensured = await ensureSecrets(record, enabled, api, deps.config, problems, events);
  const listing = await listManagedSecrets(api, enabled, names.managedLabel, problems);
  const nowMs = deps.now();
  const marks = await markStaleSecrets(listing.secrets, nowMs, {
    api,
    deps,
    signal,
    events,
    problems,
  });
  const latest = renewed ?? stored;
  const stateProblem = await saveOpenFailures(latest, events, listing, nowMs, deps, signal);
  return {
    clusterId: record.clusterId,
    ok: problems.length === 0,
    // One hostile API server must not make one log line tens of MiB: bounded and printable.
    problems: boundProblems(problems),
    secretsManaged: listing.secrets.length,
    ...marks,
    secretsCreated: ensured.created,
    serviceAccountsLinked: ensured.linked,
    credentialsRenewed,
    apiCalls: api.calls,
    eventsRecorded: events.recorded,
    eventProblem: optionalSanitized(events.problem ?? stateProblem),
  };
}

/** What one run needs to mark its stale Secrets and record what came of it. */
interface MarkContext {
  readonly api: ClusterApi;
  readonly deps: RefreshClusterDependencies;
  readonly signal: AbortSignal;
  readonly events: ClusterEvents;
  readonly problems: string[];
}

type MarkNumbers = Pick<
  ClusterReport,
  "secretsStale" | "secretsRefreshed" | "refreshFailures" | "minRemainingSeconds" | "markRetries"
>;

/** Every managed Secret of the enabled namespaces; `complete` is false when a list failed. */
async function listManagedSecrets(
  api: ClusterApi,
  namespaces: readonly string[],
  managedLabel: string,
  problems: string[],
): Promise<{ secrets: ManagedSecret[]; complete: boolean }> {
  const secrets: ManagedSecret[] = [];
  let complete = true;
  for (const namespace of namespaces) {
    try {
      secrets.push(...(await api.managedSecrets(namespace, managedLabel)));
    } catch (error) {
      problems.push(message(error));
      complete = false;
    }
  }
  return { secrets, complete };
}

/**
 * Marks the stale Secrets (the webhook refreshes each one), within the invocation's shared budget
 * of marks in flight, and records a failure, or a recovery, as an Event.
 */
async function markStaleSecrets(
  secrets: readonly ManagedSecret[],
  nowMs: number,
  context: MarkContext,
): Promise<MarkNumbers> {
  const { deps, events, problems } = context;
  const stale = secrets.filter((secret) =>
    isStale(secretTimes(secret.annotations, deps.config.names), nowMs, deps.config.refreshBeforeMs),
  );
  if (deps.markBudget === undefined)
    return {
      secretsStale: stale.length,
      secretsRefreshed: 0,
      refreshFailures: 0,
      minRemainingSeconds: leastRemainingSeconds(secrets, deps.config, nowMs),
      markRetries: 0,
    };
  const marked = toRfc3339(nowMs);
  let markRetries = 0;
  // One budget for the whole invocation: marks of every cluster share the webhook's capacity, this
  // cluster at most its share. Only a mark attempt holds a slot; the Event after it is no webhook call.
  const share = deps.markBudget.join();
  const outcomes = await Promise.all(
    stale.map(async (secret) => {
      const outcome = await markOne(secret, marked, { ...context, share }, () => {
        markRetries++;
      });
      if (outcome.problem !== undefined) {
        problems.push(outcome.problem);
        await events.refreshFailed(secret, outcome.problem);
      } else await events.refreshed(secret);
      return outcome;
    }),
  ).finally(() => share.leave());
  const latest = new Map(secrets.map((secret) => [`${secret.namespace}/${secret.name}`, secret]));
  for (const outcome of outcomes)
    latest.set(`${outcome.secret.namespace}/${outcome.secret.name}`, outcome.secret);
  const refreshed = outcomes.filter((outcome) => outcome.refreshed).length;
  return {
    secretsStale: stale.length,
    secretsRefreshed: refreshed,
    refreshFailures: stale.length - refreshed,
    minRemainingSeconds: leastRemainingSeconds([...latest.values()], deps.config, nowMs),
    markRetries,
  };
}

/** One mark, and whether the answer proves the webhook wrote fresh credentials. */
async function markOne(
  secret: ManagedSecret,
  marked: string,
  { api, deps, signal, share }: MarkContext & { readonly share: ClusterShare },
  onRetry: () => void,
): Promise<{ secret: ManagedSecret; refreshed: boolean; problem?: string }> {
  const { names } = deps.config;
  const before = secretTimes(secret.annotations, names).expiresAtMs;
  try {
    const after = await markWithRetries(
      () => share.run((slot) => annotate(api, secret, marked, deps, slot)),
      { deps, signal, slotMs: share.slotMs },
      onRetry,
    );
    const afterMs = secretTimes(after.annotations, names).expiresAtMs;
    // Only a later expiry proves the webhook wrote fresh credentials.
    if (afterMs !== undefined && (before === undefined || afterMs > before))
      return { secret: after, refreshed: true };
    return {
      secret: after,
      refreshed: false,
      problem: `Secret ${secret.namespace}/${secret.name}: expires_at did not move forward`,
    };
  } catch (error) {
    return { secret, refreshed: false, problem: message(error) };
  }
}

/**
 * Merges what this run learnt about open failures into the record, when it learnt anything (a
 * healthy run writes nothing). Best effort, like the Events themselves: a write that fails or is
 * lost costs at most one extra recovery check, or one missed Refreshed Event, per Secret.
 */
async function saveOpenFailures(
  stored: StoredClusterRecord,
  events: ClusterEvents,
  listing: { secrets: readonly ManagedSecret[]; complete: boolean },
  nowMs: number,
  deps: RefreshClusterDependencies,
  signal: AbortSignal,
): Promise<string | undefined> {
  const listed = listing.complete
    ? new Set(listing.secrets.map((secret) => secret.uid))
    : undefined;
  const change = events.openFailuresChange(listed, nowMs);
  if (change === undefined) return undefined;
  try {
    await deps.saveRecord(stored, { openFailures: change }, signal);
    return undefined;
  } catch (error) {
    return `cannot remember open failures in the cluster record: ${message(error)}`;
  }
}

/**
 * Marks one Secret; a failure caused by load (a throttled webhook, ECR throttling) is tried again
 * after a jittered backoff, within the cluster's deadline, before it counts.
 */
function annotate(
  api: ClusterApi,
  secret: ManagedSecret,
  marked: string,
  deps: RefreshClusterDependencies,
  slot: AbortSignal,
): Promise<ManagedSecret> {
  return api.annotate(
    secret.namespace,
    secret.name,
    deps.config.names.markedForUpdateAtAnnotation,
    marked,
    slot,
  );
}

/** A mark that got no answer within its slot: the API server's call to the webhook is over. */
class MarkTimedOut extends Error {
  constructor(slotMs: number) {
    super(
      `no answer to the mark within ${Math.round(slotMs / 1000)} s (the webhook's timeout and a margin): its request was ended and the mark counted as failed`,
    );
  }
}

async function markWithRetries(
  attempt: () => Promise<ManagedSecret | typeof SLOT_EXPIRED>,
  {
    deps,
    signal,
    slotMs,
  }: { deps: RefreshClusterDependencies; signal: AbortSignal; slotMs: number },
  onRetry: () => void,
): Promise<ManagedSecret> {
  for (let tries = 0; ; tries++) {
    try {
      const answer = await attempt();
      if (answer === SLOT_EXPIRED) throw new MarkTimedOut(slotMs);
      return answer;
    } catch (error) {
      const transient =
        error instanceof KubernetesError && isTransientMarkFailure(error.status, error.message);
      if (!transient || tries + 1 >= deps.config.markAttempts || signal.aborted) throw error;
      onRetry();
      await sleep(backoffMs(tries, (deps.random ?? Math.random)()), undefined, { signal });
    }
  }
}

/** Text from a cluster or AWS, fit for a log line, when there is any. */
function optionalSanitized(text: string | undefined): string | undefined {
  return text === undefined ? undefined : sanitize(text);
}

/** The report of a cluster that could not be visited at all. */
export function failedReport(clusterId: string, problems: string[]): ClusterReport {
  return {
    clusterId,
    ok: false,
    problems: boundProblems(problems),
    secretsManaged: 0,
    secretsStale: 0,
    secretsRefreshed: 0,
    refreshFailures: 0,
    minRemainingSeconds: undefined,
    secretsCreated: 0,
    serviceAccountsLinked: 0,
    credentialsRenewed: false,
    apiCalls: 0,
    markRetries: 0,
    eventsRecorded: 0,
  };
}

/**
 * When the kubeconfig holds a bound ServiceAccount token past half its life, asks the API server
 * for a new one for the same ServiceAccount (TokenRequest on itself) and writes the kubeconfig back
 * to the record, so no long-lived token is ever needed. Returns the record as written, or
 * undefined when no renewal was due.
 */
async function renewCredentials(
  stored: StoredClusterRecord,
  api: ClusterApi,
  deps: RefreshClusterDependencies,
  signal: AbortSignal,
): Promise<StoredClusterRecord | undefined> {
  const token = serviceAccountToken(stored.record.kubeconfig);
  if (!token || !needsRenewal(token, deps.now())) return undefined;
  const lifetimeSeconds = Math.round((token.expiresAtMs - token.issuedAtMs) / 1000);
  const renewed = await api.requestToken(
    token.namespace,
    token.name,
    Math.max(3600, lifetimeSeconds),
  );
  const { kubeconfig } = stored.record;
  return deps.saveRecord(
    stored,
    { kubeconfig: { from: kubeconfig, to: withToken(kubeconfig, renewed.token) } },
    signal,
  );
}

async function ensureSecrets(
  record: RefresherRecord,
  enabledNamespaces: readonly string[],
  api: ClusterApi,
  config: RefresherConfig,
  problems: string[],
  events: ClusterEvents,
): Promise<{ created: number; linked: number }> {
  const ensure = record.ensure;
  let created = 0;
  let linked = 0;
  if (!ensure) return { created, linked };
  for (const namespace of ensure.namespaces) {
    if (!enabledNamespaces.includes(namespace)) {
      const problem = `namespace ${namespace} lacks the label ${config.names.namespaceLabel}=enabled (or does not exist); label it so the webhook fills Secrets there`;
      problems.push(`ensure: ${problem}`);
      await events.ensureFailed(namespace, problem);
      continue;
    }
    try {
      if (
        (await api.createManagedSecret(namespace, ensure.secretName, config.names.managedLabel)) ===
        "created"
      )
        created++;
      for (const serviceAccount of ensure.serviceAccounts ?? []) {
        if (
          (await api.addImagePullSecret(namespace, serviceAccount, ensure.secretName)) === "added"
        )
          linked++;
      }
    } catch (error) {
      problems.push(`ensure: ${message(error)}`);
      await events.ensureFailed(namespace, message(error));
    }
  }
  return { created, linked };
}

function leastRemainingSeconds(
  secrets: readonly ManagedSecret[],
  config: RefresherConfig,
  nowMs: number,
): number | undefined {
  if (secrets.length === 0) return undefined;
  const remaining = secrets.map((secret) => {
    const expiresAtMs = secretTimes(secret.annotations, config.names).expiresAtMs;
    return expiresAtMs === undefined ? 0 : Math.max(0, (expiresAtMs - nowMs) / 1000);
  });
  return Math.floor(Math.min(...remaining));
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
