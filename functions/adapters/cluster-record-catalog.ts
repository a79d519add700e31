/**
 * The refresher's part of cluster records, in its own DynamoDB table (`<records>-refresher`): it
 * lists them (a paginated Scan), opens each sealed kubeconfig with KMS, and writes back its renewed
 * kubeconfig and its open-failures state with an UpdateItem conditioned on the revision it read.
 * It never reads or writes the webhook's table, so nothing it does can change who may call the
 * webhook: an emergency token rotation stays as it was made. A bad item is reported by cluster id
 * and skipped, never stopping the others.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import pLimit from "p-limit";
import {
  applyRefresherChange,
  isDeletedItem,
  parseRefresherItem,
  type RefresherRecord,
  type RefresherRecordChange,
} from "../core/cluster-record.ts";
import type { KubeconfigSeal } from "./kubeconfig-seal.ts";
import { fromItem, toAttribute } from "./record-items.ts";
import { scanItems, scanLiveClusterIds } from "./record-scan.ts";

export interface StoredClusterRecord {
  /** The refresher's part, its kubeconfig opened. */
  readonly record: RefresherRecord;
  /** The item's revision when read: a write-back is conditioned on it. */
  readonly revision: number;
  /** The key that sealed the kubeconfig (a renewed one is sealed under the configured key, or it). */
  readonly keyArn: string;
}

export interface InvalidClusterRecord {
  readonly clusterId: string;
  readonly error: string;
}

export interface ClusterRecordListing {
  readonly valid: StoredClusterRecord[];
  readonly invalid: InvalidClusterRecord[];
}

/** Kubeconfigs opened at once while listing: KMS Decrypt calls in flight. */
const OPEN_CONCURRENCY = 8;

export class RefresherRecordTable {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #seal: KubeconfigSeal;

  constructor(options: { client: DynamoDBClient; table: string; seal: KubeconfigSeal }) {
    this.#client = options.client;
    this.#table = options.table;
    this.#seal = options.seal;
  }

  /** Every record not marked deleted, opened; bad ones are listed by id with the reason. */
  async list(signal?: AbortSignal): Promise<ClusterRecordListing> {
    // Eventually consistent (half the read units): every write-back is conditioned on the revision
    // read, so a stale item costs a consistent re-read, never a lost change.
    const items = await scanItems(this.#client, { TableName: this.#table }, signal);
    const listing: ClusterRecordListing = { valid: [], invalid: [] };
    const limit = pLimit(OPEN_CONCURRENCY);
    await Promise.all(
      items
        .filter((item) => !isDeletedItem(item))
        .map((item) =>
          limit(async () => {
            try {
              listing.valid.push(await this.#open(item, undefined, signal));
            } catch (error) {
              const clusterId = typeof item.clusterId === "string" ? item.clusterId : "?";
              listing.invalid.push({ clusterId, error: message(error) });
            }
          }),
        ),
    );
    return listing;
  }

  /** The ids of every record not marked deleted (fan-out: each worker reads its own). */
  listIds(signal?: AbortSignal): Promise<string[]> {
    return scanLiveClusterIds(this.#client, this.#table, signal);
  }

  /** One record by cluster id, read consistently. Throws with the reason when unusable. */
  async read(clusterId: string, signal?: AbortSignal): Promise<StoredClusterRecord> {
    const { Item } = await this.#client.send(
      new GetItemCommand({
        TableName: this.#table,
        Key: { clusterId: { S: clusterId } },
        ConsistentRead: true,
      }),
      { abortSignal: signal },
    );
    if (Item === undefined) throw new Error(`${this.#table} has no item ${clusterId}`);
    const item = fromItem(Item);
    if (isDeletedItem(item)) throw new Error(`${this.#table} ${clusterId} is offboarded`);
    return this.#open(item, clusterId, signal);
  }

  /**
   * Writes the refresher's change back (its renewed kubeconfig, its open failures), conditioned on
   * the revision it read. When another writer got there first (a concurrent run, onboard), the
   * item is read again and the change applied to it once more: the kubeconfig only while it is
   * still the one that was renewed, open failures merged as additions and removals. Nothing is
   * written when nothing would change. Returns the record as stored afterwards.
   */
  async update(
    stored: StoredClusterRecord,
    change: RefresherRecordChange,
    signal?: AbortSignal,
  ): Promise<StoredClusterRecord> {
    try {
      return await this.#write(stored, change, signal);
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    const current = await this.read(stored.record.clusterId, signal);
    try {
      return await this.#write(current, change, signal);
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      throw new Error(
        `${this.#table} ${stored.record.clusterId} changed twice while the refresher wrote it back; the next run tries again`,
      );
    }
  }

  async #write(
    current: StoredClusterRecord,
    change: RefresherRecordChange,
    signal: AbortSignal | undefined,
  ): Promise<StoredClusterRecord> {
    const { clusterId, kubeconfig, refresher } = current.record;
    const next = applyRefresherChange({ kubeconfig, refresher }, change);
    if (next === undefined) return current;
    const nextKubeconfig = next.kubeconfig as string;
    const set = ["revision = :next"];
    const values: Record<string, AttributeValue> = {
      ":next": { N: String(current.revision + 1) },
      ":read": { N: String(current.revision) },
    };
    if (nextKubeconfig !== kubeconfig) {
      const sealed = await this.#seal.seal(clusterId, nextKubeconfig, signal, current.keyArn);
      set.push("kubeconfig = :kubeconfig");
      values[":kubeconfig"] = toAttribute(sealed);
    }
    if (next.refresher !== undefined) {
      set.push("refresher = :refresher");
      values[":refresher"] = toAttribute(next.refresher);
    }
    await this.#client.send(
      new UpdateItemCommand({
        TableName: this.#table,
        Key: { clusterId: { S: clusterId } },
        UpdateExpression: `SET ${set.join(", ")}${next.refresher === undefined ? " REMOVE refresher" : ""}`,
        ConditionExpression: "revision = :read AND attribute_not_exists(deletedAt)",
        ExpressionAttributeValues: values,
      }),
      { abortSignal: signal },
    );
    const { refresher: _, ...rest } = current.record;
    return {
      ...current,
      record: {
        ...rest,
        kubeconfig: nextKubeconfig,
        ...(next.refresher === undefined ? {} : { refresher: next.refresher }),
      },
      revision: current.revision + 1,
    };
  }

  async #open(
    item: Record<string, unknown>,
    expectedClusterId: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<StoredClusterRecord> {
    const parsed = parseRefresherItem(item, expectedClusterId);
    if (!parsed.ok) throw new Error(parsed.error);
    const { layout: _, kubeconfig: sealed, revision, deletedAt, expiresAt, ...part } = parsed.value;
    const opened = await this.#seal.open(part.clusterId, sealed, signal);
    return { record: { ...part, kubeconfig: opened.kubeconfig }, revision, keyArn: opened.keyArn };
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
