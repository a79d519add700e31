/**
 * Calls a deployed webhook's health path (docs/contract.md, "Health"). No token is ever sent: the
 * header form carries a fixed placeholder, which the health path cannot tell from a real token.
 */
import { HEALTH_PATH } from "../../functions/core/health.ts";
import type { HealthProbe } from "../core/findings.ts";

/** What the header form sends: not a token, and shaped like none. */
export const PROBE_AUTHORIZATION = "Bearer ecr-anywhere-doctor-probe";

export async function probeHealth(
  webhookUrl: string,
  form: "path" | "header",
  timeoutMs: number,
): Promise<HealthProbe> {
  const url = new URL(HEALTH_PATH, webhookUrl);
  try {
    const response = await fetch(url, {
      method: "GET",
      redirect: "manual",
      headers: form === "header" ? { authorization: PROBE_AUTHORIZATION } : {},
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: response.status, body: await boundedText(response, HEALTH_BODY_LIMIT) };
  } catch (error) {
    const cause = (error as Error).cause as Error | undefined;
    return { failed: cause?.message ?? (error as Error).message };
  }
}

/** A health answer is a few dozen bytes; whatever else answers at that URL is not read further. */
const HEALTH_BODY_LIMIT = 4096;

async function boundedText(response: Response, limit: number): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  await reader.cancel();
  return Buffer.concat(chunks).subarray(0, limit).toString("utf8");
}
