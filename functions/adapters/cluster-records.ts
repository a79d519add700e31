/**
 * The webhook's part of cluster records, read from its own DynamoDB table (`<records>-webhook`)
 * and cached for a short TTL. A missing item, or one marked deleted, is an unknown id. Once a
 * stranger (an unknown id) has called, the table's ids are listed (a keys-only Scan, at most once
 * per TTL); while that listing is fresh, an id not in it is refused without a read and never
 * enters the record cache, so a flood of made-up ids neither costs a read each nor evicts the real
 * clusters' records. Real clusters never wait for a listing: a cold start reads its item directly.
 */
import { type DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { isDeletedItem, parseWebhookItem, type WebhookRecord } from "../core/cluster-record.ts";
import type { Partition } from "../core/registries.ts";
import { type CacheSource, ExpiringCache } from "../lib/expiring-cache.ts";
import { fromItem } from "./record-items.ts";
import { scanLiveClusterIds } from "./record-scan.ts";

export type RecordLookup =
  | { readonly found: true; readonly record: WebhookRecord }
  | { readonly found: false; readonly reason: "missing" | "invalid"; readonly detail: string };

export interface ClusterRecordStoreOptions {
  readonly client: DynamoDBClient;
  /** The webhook's table of cluster records, `ecr-anywhere-clusters-webhook` by default. */
  readonly table: string;
  /** How long a lookup (found or not) is reused: the longest a revoked cluster keeps working. */
  readonly ttlMs: number;
  readonly now: () => number;
  readonly maxEntries?: number;
  /** The stack's partition: a record with registries of another one is invalid. */
  readonly partition?: Partition | undefined;
  /** Refuse ids missing from the known record names without reading them. @default true */
  readonly checkKnownNames?: boolean;
}

interface KnownNames {
  readonly ids: ReadonlySet<string>;
  readonly listedAtMs: number;
}

export class ClusterRecordStore {
  readonly #options: ClusterRecordStoreOptions;
  readonly #cache: ExpiringCache<string, RecordLookup>;
  #known: KnownNames | undefined;
  #listing: Promise<void> | undefined;
  #reads = 0;
  #lists = 0;

  constructor(options: ClusterRecordStoreOptions) {
    this.#options = options;
    this.#cache = new ExpiringCache({ maxEntries: options.maxEntries ?? 1000, now: options.now });
  }

  /** Throws only when DynamoDB cannot answer; a missing or invalid record is a result. */
  lookup(
    clusterId: string,
    signal: AbortSignal,
  ): Promise<{ value: RecordLookup; source: CacheSource }> {
    return this.#cache.getOrLoad(clusterId, async () => {
      if (!this.#mayExist(clusterId))
        // Not cached (already expired): strangers must not take the real clusters' places.
        return { value: unknown(this.#options.table, clusterId), serveUntilMs: 0 };
      const value = await this.#read(clusterId, signal);
      if (!value.found && value.reason === "missing" && this.#options.checkKnownNames !== false) {
        // A stranger: list the names now, so the next ones cost no read.
        await this.#refreshKnownNames(signal);
        return { value, serveUntilMs: 0 };
      }
      return { value, serveUntilMs: this.#options.now() + this.#options.ttlMs };
    });
  }

  /** True when the latest listing has this id (no call is made). */
  isKnown(clusterId: string): boolean {
    return this.#known?.ids.has(clusterId) === true;
  }

  /** DynamoDB calls made so far: GetItem reads, and listings (each a paginated keys-only Scan). */
  get calls(): { readonly reads: number; readonly lists: number } {
    return { reads: this.#reads, lists: this.#lists };
  }

  /**
   * False only when a listing younger than the TTL lacks the id. No listing, an old one, or one
   * that failed says nothing: the record is read (availability first; a stranger costs one read).
   */
  #mayExist(clusterId: string): boolean {
    if (this.#options.checkKnownNames === false) return true;
    return this.#freshListing()?.ids.has(clusterId) ?? true;
  }

  /** The listing of known ids, while it is younger than the TTL. */
  #freshListing(): KnownNames | undefined {
    const known = this.#known;
    return known !== undefined && this.#options.now() - known.listedAtMs < this.#options.ttlMs
      ? known
      : undefined;
  }

  async #refreshKnownNames(signal: AbortSignal): Promise<void> {
    if (this.#freshListing() !== undefined) return;
    this.#listing ??= this.#list(signal).finally(() => {
      this.#listing = undefined;
    });
    await this.#listing;
  }

  /** A failed listing is no listing: strangers then cost a read each, as before. */
  async #list(signal: AbortSignal): Promise<void> {
    const listedAtMs = this.#options.now();
    try {
      this.#lists++;
      const ids = await scanLiveClusterIds(this.#options.client, this.#options.table, signal);
      this.#known = { ids: new Set(ids), listedAtMs };
    } catch {
      // Nothing to keep.
    }
  }

  async #read(clusterId: string, signal: AbortSignal): Promise<RecordLookup> {
    const { table } = this.#options;
    this.#reads++;
    // Eventually consistent: half the price, and a record is cached for the TTL anyway.
    const { Item } = await this.#options.client.send(
      new GetItemCommand({ TableName: table, Key: { clusterId: { S: clusterId } } }),
      { abortSignal: signal },
    );
    if (Item === undefined)
      return { found: false, reason: "missing", detail: `${table} has no item ${clusterId}` };
    const item = fromItem(Item);
    if (isDeletedItem(item))
      return { found: false, reason: "missing", detail: `${table} ${clusterId} is offboarded` };
    const parsed = parseWebhookItem(item, clusterId, this.#options.partition);
    if (!parsed.ok)
      return { found: false, reason: "invalid", detail: `${table} ${clusterId}: ${parsed.error}` };
    const { layout: _, deletedAt: _deleted, expiresAt: _expires, ...record } = parsed.value;
    return { found: true, record };
  }
}

function unknown(table: string, clusterId: string): RecordLookup {
  return {
    found: false,
    reason: "missing",
    detail: `${clusterId} is not among the ids in ${table}`,
  };
}
