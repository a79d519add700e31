/** The cluster record kept in Secrets Manager (docs/contract.md), validated at the boundary. */
import { isIP } from "node:net";
import * as v from "valibot";
import { isEcrHost, type Partition, partitionProblem } from "./registries.ts";
import { type Parsed, parseJson, parseWith } from "./validation.ts";

export const CLUSTER_RECORD_VERSION = 1;

const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const ECR_REPOSITORY_ARN =
  /^arn:aws[a-z-]*:ecr:[a-z0-9-]+:\d{12}:repository\/[a-z0-9._/*-]{1,256}$/;

export function isDns1123Label(value: string): boolean {
  return DNS_1123_LABEL.test(value);
}

export function isRoleArn(value: string): boolean {
  return ROLE_ARN.test(value);
}

export function isEcrRepositoryArn(value: string): boolean {
  return ECR_REPOSITORY_ARN.test(value);
}

export function isCidr(value: string): boolean {
  const [address, prefix, ...rest] = value.split("/");
  if (address === undefined || prefix === undefined || rest.length > 0) return false;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  const family = isIP(address);
  const bits = Number(prefix);
  return (family === 4 && bits <= 32) || (family === 6 && bits <= 128);
}

const ClusterId = v.pipe(v.string(), v.check(isDns1123Label, "a DNS-1123 label"));

export const ClusterRecordV1Schema = v.strictObject({
  version: v.literal(CLUSTER_RECORD_VERSION),
  clusterId: ClusterId,
  kubeconfig: v.pipe(v.string(), v.nonEmpty()),
  webhookTokenSha256: v.pipe(
    v.array(v.pipe(v.string(), v.regex(/^[0-9a-fA-F]{64}$/, "64 hex digits"), v.toLowerCase())),
    v.minLength(1),
    v.maxLength(2, "at most two hashes (current and next, during rotation)"),
  ),
  registries: v.pipe(
    v.array(v.pipe(v.string(), v.check(isEcrHost, "an ECR registry host"))),
    v.minLength(1),
  ),
  roleArn: v.optional(v.pipe(v.string(), v.check(isRoleArn, "an IAM role ARN"))),
  repositories: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.check(isEcrRepositoryArn, "an ECR repository ARN"))),
      v.minLength(1),
    ),
  ),
  /** First pulls through a pull-through cache rule may import upstream images (session policy). */
  pullThroughCache: v.optional(v.boolean()),
  allowedSourceCidrs: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.check(isCidr, "a CIDR such as 203.0.113.0/24"))),
      v.minLength(1),
    ),
  ),
  ensure: v.optional(
    v.strictObject({
      secretName: v.pipe(
        v.string(),
        v.regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "a Secret name"),
      ),
      namespaces: v.pipe(v.array(ClusterId), v.minLength(1)),
      serviceAccounts: v.optional(v.array(v.pipe(v.string(), v.nonEmpty()))),
    }),
  ),
  /**
   * The refresher's own state (see `OpenFailures` below). Not validated here: the webhook never
   * reads it, so nothing the refresher stores can make the webhook refuse a record, and the
   * refresher reads it tolerantly.
   */
  refresher: v.optional(v.unknown()),
});

export type ClusterRecord = v.InferOutput<typeof ClusterRecordV1Schema>;

/**
 * Parses a record's JSON text. An unknown `version` is reported as such rather than as a pile of
 * field errors, so an operator running an older release knows to upgrade.
 */
export function parseClusterRecord(
  text: string,
  expectedClusterId?: string,
  /** The stack's partition: registries of another one are refused. */
  partition?: Partition,
): Parsed<ClusterRecord> {
  const json = parseJson(text);
  if (!json.ok) return json;
  const version = (json.value as { version?: unknown } | null)?.version;
  if (version !== CLUSTER_RECORD_VERSION) {
    return {
      ok: false,
      error: `unsupported cluster record version ${JSON.stringify(version ?? null)}; this release reads version ${CLUSTER_RECORD_VERSION}`,
    };
  }
  const parsed = parseWith(ClusterRecordV1Schema, json.value);
  if (
    parsed.ok &&
    expectedClusterId !== undefined &&
    parsed.value.clusterId !== expectedClusterId
  ) {
    return {
      ok: false,
      error: `record clusterId "${parsed.value.clusterId}" does not match its name (${expectedClusterId})`,
    };
  }
  // Every token is minted under a session policy built from the record (docs/contract.md, "Token
  // scoping"), so `repositories` narrows with or without a role. `pullThroughCache` opts a
  // narrowed record in; a record that does not narrow inherits the stack's setting instead.
  if (
    parsed.ok &&
    parsed.value.pullThroughCache === true &&
    parsed.value.repositories === undefined
  )
    return {
      ok: false,
      error:
        "pullThroughCache in a record needs repositories (a record without them inherits the stack's pullThroughCache setting)",
    };
  if (parsed.ok && partition !== undefined) {
    const problem = parsed.value.registries
      .map((host) => partitionProblem(host, partition))
      .find((found) => found !== undefined);
    if (problem) return { ok: false, error: problem };
  }
  return parsed;
}

// The refresher's part of the record: which RefreshFailed Events it left open.

/**
 * At most this many open failures are remembered per cluster. A failure is remembered only once
 * its RefreshFailed Event was written; a run writes at most 50 Events per cluster
 * (`EVENT_WRITES_PER_RUN`), and kube-apiserver deletes an Event an hour after its last write
 * (`--event-ttl`, default 1h), so with the 15-minute schedule at most five runs' writes (250
 * Events) can be alive at once. 256 uids of 36 characters add at most 10 KB to a record (Secrets
 * Manager takes 64 KB; a kubeconfig is 2 to 6 KB). Beyond it, `untrackedSince` takes over.
 */
export const OPEN_FAILURES_LIMIT = 256;

export interface OpenFailures {
  /** uids of managed Secrets whose RefreshFailed Event may still be open, oldest first. */
  readonly uids: readonly string[];
  /**
   * Set when failures may be open that `uids` does not hold (the list was full, or the stored state
   * was unreadable): until a clean run clears it, every refreshed Secret gets the recovery check, as
   * before this state existed. Its value (when it was set) lets a run clear only the marker it read.
   */
  readonly untrackedSince?: string;
}

/** What one run learnt, applied to the state as stored at write time (not as it read it). */
export interface OpenFailuresChange {
  /** Secrets whose RefreshFailed Event this run wrote (or may have written). */
  readonly opened: readonly string[];
  /** Secrets whose failure is closed: recovery checked, or no longer listed. */
  readonly closed: readonly string[];
  /** The marker this run read and may clear (it checked every refreshed Secret, listed all). */
  readonly clears?: string;
  /** When the run happened: the marker's value if the list overflows. */
  readonly at: string;
}

/** What the refresher writes back: its renewed kubeconfig and its own state. */
export interface RefresherRecordChange {
  /** Written only while the record still holds `from`: a kubeconfig written meanwhile is newer. */
  readonly kubeconfig?: { readonly from: string; readonly to: string };
  readonly openFailures?: OpenFailuresChange;
}

const UID = /^[0-9A-Za-z-]{1,64}$/;
const UNREADABLE = "unreadable";

/** The refresher's state from a record's `refresher` field; anything unreadable means "unknown". */
export function readOpenFailures(part: unknown): OpenFailures {
  if (part === undefined) return { uids: [] };
  const unknown: OpenFailures = { uids: [], untrackedSince: UNREADABLE };
  if (!isObject(part)) return unknown;
  const { openFailures = [], untrackedSince } = part;
  if (!Array.isArray(openFailures) || !openFailures.every(isUid)) return unknown;
  if (untrackedSince !== undefined && typeof untrackedSince !== "string") return unknown;
  const uids = [...new Set(openFailures)];
  const marker = untrackedSince ?? (uids.length > OPEN_FAILURES_LIMIT ? UNREADABLE : undefined);
  return {
    uids: uids.slice(0, OPEN_FAILURES_LIMIT),
    ...(marker === undefined ? {} : { untrackedSince: marker }),
  };
}

/**
 * One run's change applied to the state stored now: concurrent runs' changes compose (each adds
 * and removes only what it saw), the list stays within OPEN_FAILURES_LIMIT (what does not fit sets
 * the marker), and a marker is cleared only by a run that read that same marker.
 */
export function mergeOpenFailures(current: OpenFailures, change: OpenFailuresChange): OpenFailures {
  const closed = new Set(change.closed);
  const uids = [...new Set([...current.uids, ...change.opened])].filter((uid) => !closed.has(uid));
  let untrackedSince =
    change.clears !== undefined && change.clears === current.untrackedSince
      ? undefined
      : current.untrackedSince;
  if (uids.length > OPEN_FAILURES_LIMIT) untrackedSince ??= change.at;
  return {
    uids: uids.slice(0, OPEN_FAILURES_LIMIT),
    ...(untrackedSince === undefined ? {} : { untrackedSince }),
  };
}

/**
 * The refresher's change applied to a record as stored now (its raw JSON): every field it does not
 * own is kept as it is, unknown ones included. Undefined when nothing would change.
 */
export function applyRefresherChange(
  current: Readonly<Record<string, unknown>>,
  change: RefresherRecordChange,
): Record<string, unknown> | undefined {
  const next: Record<string, unknown> = { ...current };
  if (change.kubeconfig && current.kubeconfig === change.kubeconfig.from)
    next.kubeconfig = change.kubeconfig.to;
  if (change.openFailures) {
    const before = readOpenFailures(current.refresher);
    const after = mergeOpenFailures(before, change.openFailures);
    if (!sameOpenFailures(before, after) || before.untrackedSince === UNREADABLE) {
      const part: Record<string, unknown> = isObject(current.refresher)
        ? { ...current.refresher }
        : {};
      delete part.openFailures;
      delete part.untrackedSince;
      if (after.uids.length > 0) part.openFailures = after.uids;
      if (after.untrackedSince !== undefined) part.untrackedSince = after.untrackedSince;
      if (Object.keys(part).length > 0) next.refresher = part;
      else delete next.refresher;
    }
  }
  return JSON.stringify(next) === JSON.stringify(current) ? undefined : next;
}

function sameOpenFailures(a: OpenFailures, b: OpenFailures): boolean {
  return (
    a.untrackedSince === b.untrackedSince &&
    a.uids.length === b.uids.length &&
    a.uids.every((uid, index) => b.uids[index] === uid)
  );
}

function isUid(value: unknown): value is string {
  return typeof value === "string" && UID.test(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
