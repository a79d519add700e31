/**
 * moto_server on a free loopback port: real AWS wire protocols for STS, DynamoDB, KMS, SQS and
 * CloudFormation. The first start on a machine without moto installs it (testbed/tools.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { freePort, waitFor } from "./ports.ts";
import { ensureMotoServer } from "./tools.ts";

export interface MotoServer {
  readonly url: string;
  stop(): Promise<void>;
}

export interface MotoOptions {
  /** Serve HTTPS with this certificate, as AWS endpoints do. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
}

export async function startMoto(options: MotoOptions = {}): Promise<MotoServer> {
  const [program = "moto_server", ...programArgs] = await ensureMotoServer();
  const port = await freePort();
  const tlsArgs = options.tls ? ["-s", "-c", options.tls.certFile, "-k", options.tls.keyFile] : [];
  const child: ChildProcess = spawn(
    program,
    [...programArgs, "-H", "127.0.0.1", "-p", String(port), ...tlsArgs],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  // A run that exits before stop() (a test run dying, the demo's terminal closing) takes it along.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
  try {
    await waitFor(() => isUp(port, options.tls !== undefined), 30_000, "moto_server");
  } catch (error) {
    child.kill("SIGKILL");
    throw new Error(`moto_server did not start: ${(error as Error).message}\n${stderr}`);
  }
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        process.removeListener("exit", killOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

function isUp(port: number, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const request = (tls ? httpsRequest : httpRequest)(
      { host: "127.0.0.1", port, path: "/moto-api/", rejectUnauthorized: false, timeout: 2000 },
      (response) => {
        response.resume();
        resolve(response.statusCode === 200);
      },
    );
    request.on("error", () => resolve(false));
    request.end();
  });
}
