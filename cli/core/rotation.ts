/** The record changes of a zero-downtime webhook token rotation: the webhook's part only. Pure. */

interface TokenHashes {
  readonly webhookTokenSha256: readonly string[];
}

/** Step 1: the current hash and the next one are both valid (the record allows two). */
export function withNextToken<T extends TokenHashes>(
  record: T,
  currentSha256: string,
  nextSha256: string,
): T & { webhookTokenSha256: string[] } {
  return { ...record, webhookTokenSha256: [currentSha256, nextSha256] };
}

/** Last step: only the new hash is valid. */
export function withOnlyToken<T extends TokenHashes>(
  record: T,
  sha256: string,
): T & { webhookTokenSha256: string[] } {
  return { ...record, webhookTokenSha256: [sha256] };
}
