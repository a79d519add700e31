/**
 * Imports a built Lambda bundle in a fresh process and invokes its handler once per event given on
 * stdin (a JSON array), printing the results and timings as JSON. Used by the bundle test and the
 * cold-start benchmark: what runs is exactly the artifact Lambda would load.
 *
 *   node scripts/invoke-bundle.ts /path/to/index.mjs < events.json
 */
import { text } from "node:stream/consumers";
import { pathToFileURL } from "node:url";

const bundlePath = process.argv[2];
if (!bundlePath) {
  console.error("usage: node scripts/invoke-bundle.ts <bundle.mjs> < events.json");
  process.exit(2);
}
const events: unknown[] = JSON.parse(await text(process.stdin));
const started = performance.now();
const { handler } = (await import(pathToFileURL(bundlePath).href)) as {
  handler: (event: unknown, context: unknown) => Promise<unknown>;
};
const importMs = performance.now() - started;
const invocations: { result: unknown; ms: number }[] = [];
for (const event of events) {
  const invokeStarted = performance.now();
  const result = await handler(event, { awsRequestId: `bundle-${invocations.length}` });
  invocations.push({ result, ms: performance.now() - invokeStarted });
}
// Logs from the handler go to stdout as well; the report is the last line.
process.stdout.write(`\n${JSON.stringify({ importMs, invocations, sinceProcessStartMs: performance.now() })}\n`);
