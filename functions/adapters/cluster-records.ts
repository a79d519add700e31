/**
 * Reads cluster records from AWS Secrets Manager, cached for a short TTL. Once a stranger (an id
 * with no record) has called, the record names are listed (at most once per TTL); while that
 * listing is fresh, an id not in it is refused without a read and never enters the record cache,
 * so a flood of made-up ids neither costs a GetSecretValue each nor evicts the real clusters'
 * records. Real clusters never wait for a listing: a cold start reads its record directly.
 */
import { GetSecretValueCommand, type SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { type ClusterRecord, parseClusterRecord } from "../core/cluster-record.ts";
import type { Partition } from "../core/registries.ts";
import { type CacheSource, ExpiringCache } from "../lib/expiring-cache.ts";
import { listClusterRecordNames } from "./cluster-record-catalog.ts";

export type RecordLookup =
  | { readonly found: true; readonly record: ClusterRecord }
  | { readonly found: false; readonly reason: "missing" | "invalid"; readonly detail: string };

export interface ClusterRecordStoreOptions {
  readonly client: SecretsManagerClient;
  /** Secret name prefix, `ecr-anywhere/clusters/` by default. */
  readonly namePrefix: string;
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

  /** Throws only when Secrets Manager cannot answer; a missing or invalid record is a result. */
  lookup(
    clusterId: string,
    signal: AbortSignal,
  ): Promise<{ value: RecordLookup; source: CacheSource }> {
    return this.#cache.getOrLoad(clusterId, async () => {
      if (!this.#mayExist(clusterId))
        // Not cached (already expired): strangers must not take the real clusters' places.
        return { value: unknown(this.#options.namePrefix, clusterId), serveUntilMs: 0 };
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

  /** Secrets Manager calls made so far: GetSecretValue reads and ListSecrets listings. */
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

  /** The listing of record names, while it is younger than the TTL. */
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
    const prefix = this.#options.namePrefix;
    try {
      this.#lists++;
      const names = await listClusterRecordNames(this.#options.client, prefix, signal);
      this.#known = { ids: new Set(names.map((name) => name.slice(prefix.length))), listedAtMs };
    } catch {
      // Nothing to keep.
    }
  }

  async #read(clusterId: string, signal: AbortSignal): Promise<RecordLookup> {
    const secretId = `${this.#options.namePrefix}${clusterId}`;
    try {
      this.#reads++;
      const result = await this.#options.client.send(
        new GetSecretValueCommand({ SecretId: secretId }),
        {
          abortSignal: signal,
        },
      );
      if (result.SecretString === undefined) {
        return { found: false, reason: "invalid", detail: `${secretId} has no SecretString` };
      }
      const parsed = parseClusterRecord(result.SecretString, clusterId, this.#options.partition);
      return parsed.ok
        ? { found: true, record: parsed.value }
        : { found: false, reason: "invalid", detail: `${secretId}: ${parsed.error}` };
    } catch (error) {
      if (error instanceof Error && error.name === "ResourceNotFoundException") {
        return { found: false, reason: "missing", detail: `${secretId} does not exist` };
      }
      throw error;
    }
  }
}

function unknown(namePrefix: string, clusterId: string): RecordLookup {
  return {
    found: false,
    reason: "missing",
    detail: `${namePrefix}${clusterId} is not among the cluster records`,
  };
}
