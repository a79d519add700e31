/** The record changes of a zero-downtime webhook token rotation. Pure. */
import type { ClusterRecord } from "../../functions/core/cluster-record.ts";

/** Step 1: the current hash and the next one are both valid (the record allows two). */
export function withNextToken(
  record: ClusterRecord,
  currentSha256: string,
  nextSha256: string,
): ClusterRecord {
  return { ...record, webhookTokenSha256: [currentSha256, nextSha256] };
}

/** Last step: only the new hash is valid. */
export function withOnlyToken(record: ClusterRecord, sha256: string): ClusterRecord {
  return { ...record, webhookTokenSha256: [sha256] };
}
