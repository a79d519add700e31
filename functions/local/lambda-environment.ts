/**
 * One Lambda execution environment, as a worker thread: it imports the handler module on its own
 * (its own module instances, caches and SDK clients: nothing is shared with other environments),
 * reports when its init phase is done, then runs one invocation at a time.
 */
import { parentPort, workerData } from "node:worker_threads";

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

export interface EnvironmentRequest {
  readonly id: number;
  readonly event: unknown;
  readonly context: { readonly awsRequestId: string };
}

export type EnvironmentMessage =
  | { readonly type: "ready"; readonly initMs: number }
  | { readonly type: "init-error"; readonly message: string }
  | { readonly type: "result"; readonly id: number; readonly result: unknown }
  | { readonly type: "error"; readonly id: number; readonly message: string };

const port = parentPort;
if (!port) throw new Error("lambda-environment.ts runs as a worker thread");
const post = (message: EnvironmentMessage) => port.postMessage(message);
const started = performance.now();
let handler: Handler;
try {
  ({ handler } = (await import((workerData as { moduleUrl: string }).moduleUrl)) as {
    handler: Handler;
  });
  post({ type: "ready", initMs: performance.now() - started });
} catch (error) {
  post({ type: "init-error", message: (error as Error).message });
  process.exit(1);
}
port.on("message", async (request: EnvironmentRequest) => {
  try {
    post({ type: "result", id: request.id, result: await handler(request.event, request.context) });
  } catch (error) {
    post({ type: "error", id: request.id, message: (error as Error).message });
  }
});
