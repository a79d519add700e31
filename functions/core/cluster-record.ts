/**
 * Cluster records, layout 2 (docs/contract.md): one cluster's record is two DynamoDB items, the
 * webhook's part (what it needs to authenticate a call and mint tokens: nothing secret) and the
 * refresher's part (its kubeconfig, sealed with KMS, and its own state). The webhook never reads
 * the refresher's part, and the refresher never writes the webhook's. `ClusterRecord` is the whole
 * as the CLI builds it and tests describe a cluster; it is split into the two parts to be stored.
 * Validated at the boundary; pure.
 */
import { isIP } from "node:net";
import * as v from "valibot";
import { KubeconfigEnvelopeSchema } from "./envelope.ts";
import { isEcrHost, type Partition, partitionProblem } from "./registries.ts";
import { type Parsed, parseWith } from "./validation.ts";

/** The `layout` attribute both items carry: an item of another layout is invalid. */
export const CLUSTER_RECORD_LAYOUT = 2;

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
const WholeNumber = v.pipe(v.number(), v.integer(), v.minValue(0));

/** The webhook's part: who may call for this cluster, and what its tokens may pull. */
const webhookFields = {
  clusterId: ClusterId,
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
};

/** The refresher's part, apart from its kubeconfig (plain in the whole, sealed in the item). */
const refresherFields = {
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
   * The refresher's own state (see `OpenFailures` below). Not validated here: nothing the
   * refresher stores can make its item invalid, and it reads the state tolerantly.
   */
  refresher: v.optional(v.unknown()),
};

/** Offboarded: the id is unknown from then on; DynamoDB deletes the item at `expiresAt`. */
const deletionFields = {
  /** When it was offboarded (ms since the epoch). */
  deletedAt: v.optional(WholeNumber),
  /** DynamoDB's TTL attribute (seconds since the epoch): the end of the recovery window. */
  expiresAt: v.optional(WholeNumber),
};

const Kubeconfig = v.pipe(v.string(), v.nonEmpty());

/** The whole record: both parts, the kubeconfig in the clear. */
export const ClusterRecordSchema = v.strictObject({
  ...webhookFields,
  kubeconfig: Kubeconfig,
  ...refresherFields,
});
export type ClusterRecord = v.InferOutput<typeof ClusterRecordSchema>;

export const WebhookRecordSchema = v.strictObject(webhookFields);
/** What the webhook reads for a cluster. */
export type WebhookRecord = v.InferOutput<typeof WebhookRecordSchema>;

/** The webhook table's item. Unknown attributes are refused: a misspelt CIDR list must not open it. */
export const WebhookItemSchema = v.strictObject({
  layout: v.literal(CLUSTER_RECORD_LAYOUT),
  ...webhookFields,
  ...deletionFields,
});
export type WebhookItem = v.InferOutput<typeof WebhookItemSchema>;

export const RefresherRecordSchema = v.strictObject({
  clusterId: ClusterId,
  kubeconfig: Kubeconfig,
  ...refresherFields,
});
/** What the refresher works with for a cluster, its kubeconfig opened. */
export type RefresherRecord = v.InferOutput<typeof RefresherRecordSchema>;

/** The refresher table's item: the kubeconfig sealed, and a revision for conditional writes. */
export const RefresherItemSchema = v.strictObject({
  layout: v.literal(CLUSTER_RECORD_LAYOUT),
  clusterId: ClusterId,
  kubeconfig: KubeconfigEnvelopeSchema,
  ...refresherFields,
  /** Bumped by every write; each write is conditioned on the revision its writer read. */
  revision: WholeNumber,
  ...deletionFields,
});
export type RefresherItem = v.InferOutput<typeof RefresherItemSchema>;

/** The whole record's two parts, as they are stored. */
export function splitClusterRecord(record: ClusterRecord): {
  readonly webhook: WebhookRecord;
  readonly refresher: RefresherRecord;
} {
  const { kubeconfig, ensure, refresher, ...webhook } = record;
  return {
    webhook,
    refresher: {
      clusterId: record.clusterId,
      kubeconfig,
      ...(ensure === undefined ? {} : { ensure }),
      ...(refresher === undefined ? {} : { refresher }),
    },
  };
}

/** The whole record from its two parts (the CLI's view of a cluster). */
export function joinClusterRecord(
  webhook: WebhookRecord,
  refresher: RefresherRecord,
): ClusterRecord {
  const { clusterId: _, ...refresherPart } = refresher;
  return { ...webhook, ...refresherPart };
}

/** Validates a whole record (the CLI builds one before splitting it), with the webhook's rules. */
export function parseClusterRecord(
  value: unknown,
  expectedClusterId?: string,
  partition?: Partition,
): Parsed<ClusterRecord> {
  const parsed = parseWith(ClusterRecordSchema, value);
  if (!parsed.ok) return parsed;
  const problem = webhookRecordProblem(parsed.value, expectedClusterId, partition);
  return problem === undefined ? parsed : { ok: false, error: problem };
}

/**
 * Parses a webhook item as GetItem returns it (unmarshalled). A `layout` other than this release's
 * is reported as such rather than as a pile of field errors, so an operator knows to upgrade.
 */
export function parseWebhookItem(
  item: unknown,
  expectedClusterId?: string,
  /** The stack's partition: registries of another one are refused. */
  partition?: Partition,
): Parsed<WebhookItem> {
  const layout = layoutProblem(item);
  if (layout !== undefined) return { ok: false, error: layout };
  const parsed = parseWith(WebhookItemSchema, item);
  if (!parsed.ok) return parsed;
  const problem = webhookRecordProblem(parsed.value, expectedClusterId, partition);
  return problem === undefined ? parsed : { ok: false, error: problem };
}

/** Parses a refresher item (its kubeconfig still sealed). */
export function parseRefresherItem(
  item: unknown,
  expectedClusterId?: string,
): Parsed<RefresherItem> {
  const layout = layoutProblem(item);
  if (layout !== undefined) return { ok: false, error: layout };
  const parsed = parseWith(RefresherItemSchema, item);
  if (parsed.ok && expectedClusterId !== undefined && parsed.value.clusterId !== expectedClusterId)
    return { ok: false, error: clusterIdProblem(parsed.value.clusterId, expectedClusterId) };
  return parsed;
}

/** True for an item marked deleted (offboarded), whatever else it holds: its id is unknown. */
export function isDeletedItem(item: unknown): boolean {
  return isObject(item) && item.deletedAt !== undefined;
}

function layoutProblem(item: unknown): string | undefined {
  const layout = isObject(item) ? item.layout : undefined;
  return layout === CLUSTER_RECORD_LAYOUT
    ? undefined
    : `unsupported cluster record layout ${JSON.stringify(layout ?? null)}; this release reads layout ${CLUSTER_RECORD_LAYOUT}`;
}

function clusterIdProblem(found: string, expected: string): string {
  return `record clusterId "${found}" does not match its key (${expected})`;
}

/** The rules between the webhook's fields, beyond each field's own. */
function webhookRecordProblem(
  record: WebhookRecord,
  expectedClusterId: string | undefined,
  partition: Partition | undefined,
): string | undefined {
  if (expectedClusterId !== undefined && record.clusterId !== expectedClusterId)
    return clusterIdProblem(record.clusterId, expectedClusterId);
  // Every token is minted under a session policy built from the record (docs/contract.md, "Token
  // scoping"), so `repositories` narrows with or without a role. `pullThroughCache` opts a
  // narrowed record in; a record that does not narrow inherits the stack's setting instead.
  if (record.pullThroughCache === true && record.repositories === undefined)
    return "pullThroughCache in a record needs repositories (a record without them inherits the stack's pullThroughCache setting)";
  if (partition === undefined) return undefined;
  return record.registries
    .map((host) => partitionProblem(host, partition))
    .find((found) => found !== undefined);
}

// The refresher's part of the record: which RefreshFailed Events it left open.

/**
 * At most this many open failures are remembered per cluster. A failure is remembered only once
 * its RefreshFailed Event was written; a run writes at most 50 Events per cluster
 * (`EVENT_WRITES_PER_RUN`), and kube-apiserver deletes an Event an hour after its last write
 * (`--event-ttl`, default 1h), so with the 15-minute schedule at most five runs' writes (250
 * Events) can be alive at once. 256 uids of 36 characters add at most 10 KB to the refresher's
 * item (DynamoDB takes 400 KB; a sealed kubeconfig is 3 to 8 KB). Beyond it, `untrackedSince`
 * takes over.
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
 * The refresher's change applied to its part as stored now (`kubeconfig` in the clear and
 * `refresher`): every other field is kept as it is, unknown ones included. Undefined when nothing
 * would change.
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
