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
    // Bounded: a health answer is a few dozen bytes.
    const body = (await response.text()).slice(0, 4096);
    return { status: response.status, body };
  } catch (error) {
    const cause = (error as Error).cause as Error | undefined;
    return { failed: cause?.message ?? (error as Error).message };
  }
}
