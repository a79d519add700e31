/** Timestamps as the contract writes them, and the arithmetic on them. Pure. */

/** RFC 3339 UTC to the second, e.g. `2026-11-22T11:09:13Z`. Rounds down, never claiming extra life. */
export function toRfc3339(epochMs: number): string {
  return `${new Date(Math.floor(epochMs / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}

const RFC_3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Epoch milliseconds of an RFC 3339 timestamp, or undefined when it is not one. */
export function parseRfc3339(value: string | undefined): number | undefined {
  if (value === undefined || !RFC_3339.test(value)) return undefined;
  const epochMs = Date.parse(value);
  return Number.isNaN(epochMs) ? undefined : epochMs;
}

export function earliest(epochMs: readonly number[]): number {
  if (epochMs.length === 0) throw new RangeError("earliest() needs at least one time");
  return Math.min(...epochMs);
}
