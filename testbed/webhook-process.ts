/**
 * The webhook bundle served by the function-URL server (`npm start`) in a process of its own, as
 * Lambda runs it apart from everything else; its logs go to a file, not the caller's terminal.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { freePort } from "./ports.ts";

export interface WebhookProcess {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  /** The base64 caBundle of its certificate. */
  readonly caBundleFile: string;
  stop(): Promise<void>;
}

const repo = join(import.meta.dirname, "..");

export async function startWebhookProcess(options: {
  readonly bundle: string;
  readonly env: Record<string, string>;
  readonly logFile: string;
}): Promise<WebhookProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [join(repo, "functions/local/serve.ts")], {
    env: {
      ...process.env,
      ...options.env,
      ECR_ANYWHERE_LOCAL_BUNDLE: options.bundle,
      ECR_ANYWHERE_LOCAL_PORT: String(port),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // A run that exits before stop() (a test run dying, the demo's terminal closing) takes it along.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const log = createWriteStream(options.logFile);
  child.stdout?.pipe(log);
  let banner = "";
  const ready = new Promise<{ url: string; caBundleFile: string }>((resolve, reject) => {
    child.stderr?.on("data", (chunk: Buffer) => {
      log.write(chunk);
      banner += chunk.toString();
      const url = /listening on (https:\/\/\S+)/.exec(banner)?.[1];
      const caBundleFile = /caBundle \(base64\):\s+(\S+)/.exec(banner)?.[1];
      if (url && caBundleFile) resolve({ url, caBundleFile });
    });
    child.once("exit", (code) =>
      reject(new Error(`the webhook exited (${code}) before listening; see ${options.logFile}`)),
    );
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      process.removeListener("exit", killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  const timeout = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    const { url, caBundleFile } = await ready;
    return { url, caBundleFile, stop };
  } finally {
    clearTimeout(timeout);
  }
}
