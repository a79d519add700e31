/**
 * The refresher's view of cluster records in Secrets Manager. Listing reads every record: names from ListSecrets (filtered by prefix, paginated), values with
 * BatchGetSecretValue (20 per call). Each record is validated with the webhook's schema; a bad one
 * is reported by name and skipped, never stopping the others.
 */
import {
  BatchGetSecretValueCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import {
  applyRefresherChange,
  CLUSTER_RECORD_VERSION,
  type ClusterRecord,
  parseClusterRecord,
  type RefresherRecordChange,
} from "../core/cluster-record.ts";
import type { Partition } from "../core/registries.ts";
import { parseJson } from "../core/validation.ts";

export interface StoredClusterRecord {
  readonly secretName: string;
  /** The secret's ARN: what a write-back (credential renewal) must name. */
  readonly secretArn: string;
  readonly record: ClusterRecord;
}

export interface InvalidClusterRecord {
  readonly secretName: string;
  readonly error: string;
}

export interface ClusterRecordListing {
  readonly valid: StoredClusterRecord[];
  readonly invalid: InvalidClusterRecord[];
}

const BATCH_SIZE = 20; // the most BatchGetSecretValue takes by SecretIdList

export async function listClusterRecords(
  client: SecretsManagerClient,
  namePrefix: string,
  signal?: AbortSignal,
  partition?: Partition,
): Promise<ClusterRecordListing> {
  const names = await listClusterRecordNames(client, namePrefix, signal);
  const listing: ClusterRecordListing = { valid: [], invalid: [] };
  for (let start = 0; start < names.length; start += BATCH_SIZE) {
    const batch = names.slice(start, start + BATCH_SIZE);
    const result = await client.send(new BatchGetSecretValueCommand({ SecretIdList: batch }), {
      abortSignal: signal,
    });
    const received = new Set<string>();
    for (const secret of result.SecretValues ?? []) {
      const secretName = secret.Name ?? "";
      received.add(secretName);
      const clusterId = secretName.slice(namePrefix.length);
      const parsed = secret.SecretString
        ? parseClusterRecord(secret.SecretString, clusterId, partition)
        : ({ ok: false, error: "no SecretString" } as const);
      if (parsed.ok)
        listing.valid.push({
          secretName,
          secretArn: secret.ARN ?? secretName,
          record: parsed.value,
        });
      else listing.invalid.push({ secretName, error: parsed.error });
    }
    for (const error of result.Errors ?? []) {
      listing.invalid.push({
        secretName: error.SecretId ?? "?",
        error: `${error.ErrorCode}: ${error.Message}`,
      });
    }
    for (const secretName of batch) {
      const reported =
        received.has(secretName) ||
        (result.Errors ?? []).some((error) => error.SecretId === secretName);
      if (!reported)
        listing.invalid.push({ secretName, error: "missing from BatchGetSecretValue's answer" });
    }
  }
  return listing;
}

/** The names of every record under the prefix (ListSecrets, paginated); no values are read. */
export async function listClusterRecordNames(
  client: SecretsManagerClient,
  namePrefix: string,
  signal?: AbortSignal,
): Promise<string[]> {
  const names: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await client.send(
      new ListSecretsCommand({
        Filters: [{ Key: "name", Values: [namePrefix] }],
        MaxResults: 100,
        NextToken: nextToken,
      }),
      { abortSignal: signal },
    );
    // The name filter matches prefixes of words too; keep exact prefix matches only.
    for (const secret of page.SecretList ?? []) {
      if (secret.Name?.startsWith(namePrefix) && secret.DeletedDate === undefined)
        names.push(secret.Name);
    }
    nextToken = page.NextToken;
  } while (nextToken);
  return names;
}

/** One record by cluster id (the fan-out worker's read). Throws with the reason when unusable. */
export async function readClusterRecord(
  client: SecretsManagerClient,
  namePrefix: string,
  clusterId: string,
  signal?: AbortSignal,
  partition?: Partition,
): Promise<StoredClusterRecord> {
  const secretName = `${namePrefix}${clusterId}`;
  const secret = await client.send(new GetSecretValueCommand({ SecretId: secretName }), {
    abortSignal: signal,
  });
  const parsed = secret.SecretString
    ? parseClusterRecord(secret.SecretString, clusterId, partition)
    : ({ ok: false, error: "no SecretString" } as const);
  if (!parsed.ok) throw new Error(`${secretName}: ${parsed.error}`);
  return { secretName, secretArn: secret.ARN ?? secretName, record: parsed.value };
}

/**
 * Writes the refresher's change back (its renewed kubeconfig, its open failures). The record is
 * read again just before and only the refresher's fields are changed in it as it is stored now:
 * every other field, known or not, is kept verbatim, and nothing is written when nothing changes.
 * Secrets Manager has no conditional put, so a concurrent write can still be lost, but only within
 * one read-and-put instead of a whole run; the change itself is conditional (a kubeconfig replaced
 * meanwhile is kept, open failures are merged as additions and removals).
 */
export async function updateClusterRecord(
  client: SecretsManagerClient,
  stored: StoredClusterRecord,
  change: RefresherRecordChange,
  signal?: AbortSignal,
): Promise<"written" | "unchanged"> {
  const secret = await client.send(new GetSecretValueCommand({ SecretId: stored.secretArn }), {
    abortSignal: signal,
  });
  const json = parseJson(secret.SecretString ?? "");
  const current = json.ok ? json.value : undefined;
  if (!isRecordObject(current) || current.version !== CLUSTER_RECORD_VERSION)
    throw new Error(
      `${stored.secretName}: the stored record is not a version ${CLUSTER_RECORD_VERSION} record any more; not writing it back`,
    );
  const next = applyRefresherChange(current, change);
  if (next === undefined) return "unchanged";
  await client.send(
    new PutSecretValueCommand({ SecretId: stored.secretArn, SecretString: JSON.stringify(next) }),
    { abortSignal: signal },
  );
  return "written";
}

function isRecordObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
