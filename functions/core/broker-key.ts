/**
 * The token broker's access key: where it is kept, and when it is rotated. Pure.
 *
 * The broker is an IAM user whose only use is sts:GetFederationToken (token-scoping.ts); its key
 * is the one long-term secret of the design. The rotation function creates it, stores it in one
 * item of the webhook's token table, and replaces it on a schedule; the webhook reads the item.
 * A replaced key is deleted only once no session made with it can still be in use: sessions last
 * 36 h, and a webhook environment may keep using the replaced key until it re-reads the item.
 */
import { FEDERATION_SESSION_SECONDS } from "./token-scoping.ts";

/**
 * The item's key in the token table. Token items are keyed by SHA-256 hex digests, so no token
 * can ever take this key, and IAM can grant exactly this one item (dynamodb:LeadingKeys).
 */
export const BROKER_KEY_ITEM = "ecr-anywhere/broker-key";

/** How long a webhook environment keeps the key it read before reading the item again. */
export const BROKER_KEY_CACHE_MS = 3600_000;
/** Replace the key once it is this old. */
export const BROKER_KEY_MAX_AGE_MS = 30 * 24 * 3600_000;
/**
 * How long a replaced key is kept: the longest session made with it (36 h) plus the longest a
 * webhook environment may go on using it after the new one was stored (its cache, 1 h).
 */
export const SUPERSEDED_KEY_GRACE_MS = FEDERATION_SESSION_SECONDS * 1000 + BROKER_KEY_CACHE_MS;

/** One of the user's access keys, as IAM lists it. */
export interface AccessKeyInfo {
  readonly accessKeyId: string;
  readonly createdAtMs: number;
}

export interface NewAccessKey extends AccessKeyInfo {
  readonly secretAccessKey: string;
}

/** The key the webhook uses, as stored. */
export interface StoredBrokerKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** When it was stored: from then on, webhook environments pick it up within their cache time. */
  readonly storedAtMs: number;
}

/** The IAM user's access keys (adapters/iam-access-keys.ts). */
export interface AccessKeys {
  list(userName: string, signal: AbortSignal): Promise<AccessKeyInfo[]>;
  create(userName: string, signal: AbortSignal): Promise<NewAccessKey>;
  delete(userName: string, accessKeyId: string, signal: AbortSignal): Promise<void>;
}

/** Where the key is kept (adapters/broker-key-store.ts). */
export interface BrokerKeyStore {
  read(signal: AbortSignal): Promise<StoredBrokerKey | undefined>;
  write(key: StoredBrokerKey, signal: AbortSignal): Promise<void>;
}

export type RotationStep =
  | { readonly action: "delete"; readonly accessKeyId: string; readonly reason: string }
  | { readonly action: "create"; readonly reason: string };

export interface RotationInput {
  readonly keys: readonly AccessKeyInfo[];
  /** The stored key's id and when it was stored; undefined before the first key. */
  readonly stored: Pick<StoredBrokerKey, "accessKeyId" | "storedAtMs"> | undefined;
  readonly nowMs: number;
  readonly maxAgeMs?: number;
  readonly graceMs?: number;
}

/** IAM allows two access keys per user. */
const KEYS_PER_USER = 2;

/**
 * What one rotation run does, in order: deletions first (IAM's two-key limit), then at most one
 * new key, which the run stores. Keys other than the stored one are deleted:
 * - at once when nothing stored ever handed them out (no item yet, or created after the stored
 *   key by a run that failed before storing it);
 * - once the grace has passed since the stored key replaced them.
 * A new key is made when none usable is stored, or the stored one was stored longer ago than the
 * maximum age.
 */
export function planRotation(input: RotationInput): RotationStep[] {
  const { keys, stored, nowMs } = input;
  const graceMs = input.graceMs ?? SUPERSEDED_KEY_GRACE_MS;
  const current = keys.find((key) => key.accessKeyId === stored?.accessKeyId);
  const steps: RotationStep[] = [];
  for (const key of keys) {
    if (key === current) continue;
    const neverHandedOut =
      stored === undefined || (current !== undefined && key.createdAtMs > current.createdAtMs);
    if (neverHandedOut) {
      steps.push({ action: "delete", accessKeyId: key.accessKeyId, reason: "never stored" });
    } else if (nowMs - stored.storedAtMs > graceMs) {
      steps.push({ action: "delete", accessKeyId: key.accessKeyId, reason: "replaced" });
    }
  }
  const due = dueReason(current, nowMs, input.maxAgeMs ?? BROKER_KEY_MAX_AGE_MS, stored);
  if (due === undefined) return steps;
  const left = keys.length - steps.length;
  if (left < KEYS_PER_USER) return [...steps, { action: "create", reason: due }];
  // No slot: a replaced key is still in its grace. Wait for it, unless no key works at all.
  if (current !== undefined) return steps;
  const oldest = [...keys]
    .filter(
      (key) =>
        !steps.some((step) => step.action === "delete" && step.accessKeyId === key.accessKeyId),
    )
    .sort((a, b) => a.createdAtMs - b.createdAtMs)[0];
  if (oldest === undefined) return [...steps, { action: "create", reason: due }];
  return [
    ...steps,
    { action: "delete", accessKeyId: oldest.accessKeyId, reason: "no usable key is stored" },
    { action: "create", reason: due },
  ];
}

/** Ages are measured from when the key was stored, by this function's clock, not IAM's. */
function dueReason(
  current: AccessKeyInfo | undefined,
  nowMs: number,
  maxAgeMs: number,
  stored: RotationInput["stored"],
): string | undefined {
  if (stored === undefined) return "no key stored yet";
  if (current === undefined) return "the stored key no longer exists";
  if (nowMs - stored.storedAtMs >= maxAgeMs) return "the key is due for rotation";
  return undefined;
}
