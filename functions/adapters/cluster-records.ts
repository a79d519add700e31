/** Reads cluster records from AWS Secrets Manager, cached for a short TTL. */
import { GetSecretValueCommand, type SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { type ClusterRecord, parseClusterRecord } from "../core/cluster-record.ts";
import type { Partition } from "../core/registries.ts";
import { type CacheSource, ExpiringCache } from "../lib/expiring-cache.ts";

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
}

export class ClusterRecordStore {
  readonly #options: ClusterRecordStoreOptions;
  readonly #cache: ExpiringCache<string, RecordLookup>;

  constructor(options: ClusterRecordStoreOptions) {
    this.#options = options;
    this.#cache = new ExpiringCache({ maxEntries: options.maxEntries ?? 1000, now: options.now });
  }

  /** Throws only when Secrets Manager cannot answer; a missing or invalid record is a result. */
  lookup(
    clusterId: string,
    signal: AbortSignal,
  ): Promise<{ value: RecordLookup; source: CacheSource }> {
    return this.#cache.getOrLoad(clusterId, async () => ({
      value: await this.#read(clusterId, signal),
      serveUntilMs: this.#options.now() + this.#options.ttlMs,
    }));
  }

  async #read(clusterId: string, signal: AbortSignal): Promise<RecordLookup> {
    const secretId = `${this.#options.namePrefix}${clusterId}`;
    try {
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
