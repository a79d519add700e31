/** moto_server on a free loopback port: real AWS wire protocols for STS and Secrets Manager. */
import { type ChildProcess, spawn } from "node:child_process";
import { freePort, waitFor } from "./ports.ts";

export interface MotoServer {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startMoto(): Promise<MotoServer> {
  const port = await freePort();
  const child: ChildProcess = spawn("moto_server", ["-H", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(async () => (await fetch(`${url}/moto-api/`)).ok, 30_000, "moto_server");
  } catch (error) {
    child.kill("SIGKILL");
    throw new Error(`moto_server did not start: ${(error as Error).message}\n${stderr}`);
  }
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
