/**
 * A function for testing the Lambda pool: module state shows whether environments share anything,
 * the body says how long to take, and "throw" makes it fail.
 */
import { randomUUID } from "node:crypto";

const environmentId = randomUUID();
let invocations = 0;
let running = 0;

export async function handler(event: { body?: string }): Promise<unknown> {
  invocations++;
  running++;
  const overlapped = running > 1;
  try {
    if (event.body === "throw") throw new Error("probe failure");
    await new Promise((resolve) => setTimeout(resolve, Number(event.body ?? 0)));
    return {
      statusCode: 200,
      body: JSON.stringify({
        environmentId,
        invocations,
        overlapped,
        env: process.env.PROBE_SETTING,
      }),
    };
  } finally {
    running--;
  }
}
