/**
 * Imports a built Lambda bundle in a fresh process and invokes its handler once per event given on
 * stdin (a JSON array), printing the results and timings as JSON on the last line. Used by the
 * bundle test and the benchmark: what runs is exactly the artifact Lambda would load.
 *
 *   node scripts/invoke-bundle.ts /path/to/index.mjs < events.json
 *
 * INVOKE_QUIET=1 sends the handler's own output (logs, metrics) to /dev/null and reports timings
 * only, for long benchmark runs.
 */
import { openSync, writeSync } from "node:fs";
import { text } from "node:stream/consumers";
import { pathToFileURL } from "node:url";

const bundlePath = process.argv[2];
if (!bundlePath) {
  console.error("usage: node scripts/invoke-bundle.ts <bundle.mjs> < events.json");
  process.exit(2);
}
const quiet = process.env.INVOKE_QUIET === "1";
const events: unknown[] = JSON.parse(await text(process.stdin));
const report = (line: string) => writeSync(1, `\n${line}\n`);
if (quiet) {
  const sink = openSync("/dev/null", "w");
  process.stdout.write = ((chunk: string | Uint8Array) => {
    writeSync(sink, typeof chunk === "string" ? Buffer.from(chunk) : chunk);
    return true;
  }) as typeof process.stdout.write;
}

const started = performance.now();
const { handler } = (await import(pathToFileURL(bundlePath).href)) as {
  handler: (event: unknown, context: unknown) => Promise<unknown>;
};
const importMs = performance.now() - started;
const invocations: { result?: unknown; error?: string; errorType?: string; ms: number }[] = [];
for (const event of events) {
  const invokeStarted = performance.now();
  try {
    const result = await handler(event, { awsRequestId: `bundle-${invocations.length}` });
    const ms = performance.now() - invokeStarted;
    invocations.push(quiet ? { ms } : { result, ms });
  } catch (error) {
    // What Lambda reports for a failed invocation: the error's message and type.
    invocations.push({
      error: error instanceof Error ? error.message : String(error),
      errorType: error instanceof Error ? error.name : "Error",
      ms: performance.now() - invokeStarted,
    });
  }
}
report(JSON.stringify({ importMs, invocations, sinceProcessStartMs: performance.now() }));
