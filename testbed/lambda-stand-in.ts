/**
 * A stand-in for the two Lambda operations the CLI calls, which moto does not serve (restJson1):
 *
 * - GetAccountSettings (`GET /2016-08-19/account-settings`): the account's concurrency limit and
 *   unreserved concurrency a test chooses.
 * - Invoke (`POST /2015-03-31/functions/<name>/invocations`, RequestResponse): a function's BUILT
 *   BUNDLE (e.g. dist/refresher/index.mjs) in a fresh process per invocation, through
 *   scripts/invoke-bundle.ts, with the environment Lambda would give it. The handler's JSON result
 *   is the answer; a handler error is answered as Lambda does, status 200 with
 *   `X-Amz-Function-Error: Unhandled` and an `errorType`/`errorMessage` body.
 *
 * Each call's region (from the SigV4 credential scope) and access key are recorded, so a test can
 * see which `--region` and `--profile` reached the Lambda client.
 */
import { execFile } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { text } from "node:stream/consumers";

export interface LambdaCall {
  readonly region: string;
  readonly accessKeyId: string;
}

/** A function the stand-in can invoke: its built bundle, and the environment it runs with. */
export interface StandInFunction {
  readonly bundle: string;
  readonly env: Readonly<Record<string, string>>;
}

export interface Invocation {
  readonly functionName: string;
  readonly event: unknown;
}

export interface LambdaStandIn {
  readonly url: string;
  readonly calls: LambdaCall[];
  /** Every Invoke served, in order. */
  readonly invocations: Invocation[];
  /** The account's ConcurrentExecutions and UnreservedConcurrentExecutions. */
  limit: number;
  unreserved: number;
  stop(): Promise<void>;
}

/** What EventBridge sends the refresher on its schedule (the fields it reads, and a few more). */
export const SCHEDULED_EVENT = {
  version: "0",
  id: "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
  "detail-type": "Scheduled Event",
  source: "aws.events",
  account: "123456789012",
  time: "2026-12-01T00:00:00Z",
  region: "us-east-1",
  resources: ["arn:aws:events:us-east-1:123456789012:rule/ecr-anywhere-refresher-schedule"],
  detail: {},
} as const;

// Credential=<key>/<date>/<region>/<service>/aws4_request
const CREDENTIAL = /Credential=([^/]+)\/\d{8}\/([^/]+)\/lambda\/aws4_request/;
const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;
const INVOKE_BUNDLE = join(import.meta.dirname, "../scripts/invoke-bundle.ts");

type Reply = (status: number, body: unknown, headers?: Record<string, string>) => void;

export async function startLambdaStandIn(
  functions: Readonly<Record<string, StandInFunction>> = {},
): Promise<LambdaStandIn> {
  const state = {
    calls: [] as LambdaCall[],
    invocations: [] as Invocation[],
    limit: 1000,
    unreserved: 1000,
  };
  const server = createServer((request, response) => {
    void serve(request, response).catch((error: Error) => {
      if (!response.headersSent) response.writeHead(500, { "content-type": "application/json" });
      response.end(JSON.stringify({ message: error.message }));
    });
  });
  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await text(request);
    const reply: Reply = (status, answer, headers = {}) => {
      response.writeHead(status, { "content-type": "application/json", ...headers });
      response.end(JSON.stringify(answer));
    };
    const scope = CREDENTIAL.exec(request.headers.authorization ?? "");
    if (!scope)
      return reply(
        403,
        { message: "Missing Authentication Token" },
        { "x-amzn-errortype": "AccessDeniedException" },
      );
    state.calls.push({ accessKeyId: scope[1] ?? "", region: scope[2] ?? "" });
    const path = request.url?.split("?")[0] ?? "";
    const invoke = INVOKE_PATH.exec(path);
    if (request.method === "POST" && invoke)
      return invokeFunction(decodeURIComponent(invoke[1] ?? ""), body, reply);
    if (request.method === "GET" && path === "/2016-08-19/account-settings")
      return reply(200, accountSettings(state));
    reply(
      404,
      { message: `no ${request.method} ${request.url}` },
      { "x-amzn-errortype": "ResourceNotFoundException" },
    );
  }
  async function invokeFunction(name: string, body: string, reply: Reply): Promise<void> {
    // A name, or an ARN whose function name follows "function:" (a qualifier may follow it).
    const functionName =
      name.replace(/^arn:[^:]+:lambda:[^:]+:\d{12}:function:/, "").split(":")[0] ?? "";
    const target = functions[functionName];
    if (!target)
      return reply(
        404,
        { Type: "User", message: `Function not found: ${name}` },
        { "x-amzn-errortype": "ResourceNotFoundException" },
      );
    const event: unknown = body ? JSON.parse(body) : {};
    state.invocations.push({ functionName, event });
    const outcome = await runBundle(target, event);
    if (outcome.error === undefined)
      return reply(200, outcome.result ?? null, { "x-amz-executed-version": "$LATEST" });
    reply(
      200,
      { errorType: outcome.errorType ?? "Error", errorMessage: outcome.error, trace: [] },
      { "x-amz-executed-version": "$LATEST", "x-amz-function-error": "Unhandled" },
    );
  }
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

function accountSettings(state: { limit: number; unreserved: number }) {
  return {
    AccountLimit: {
      TotalCodeSize: 80_530_636_800,
      CodeSizeUnzipped: 262_144_000,
      CodeSizeZipped: 52_428_800,
      ConcurrentExecutions: state.limit,
      UnreservedConcurrentExecutions: state.unreserved,
    },
    AccountUsage: { TotalCodeSize: 0, FunctionCount: 0 },
  };
}

interface BundleOutcome {
  readonly result?: unknown;
  readonly error?: string;
  readonly errorType?: string;
}

/** One invocation of the bundle in a fresh process, as a cold Lambda environment would run it. */
function runBundle(target: StandInFunction, event: unknown): Promise<BundleOutcome> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [INVOKE_BUNDLE, target.bundle],
      // Only what Lambda would set, and the stand-ins' endpoints: nothing inherited.
      {
        env: { PATH: process.env.PATH ?? "", ...target.env },
        timeout: 180_000,
        maxBuffer: 64 << 20,
      },
      (error, stdout, stderr) => {
        const last = stdout.trim().split("\n").at(-1) ?? "";
        try {
          const report = JSON.parse(last) as { invocations: BundleOutcome[] };
          const outcome = report.invocations[0];
          if (outcome) return resolve(outcome);
        } catch {
          // Reported below, with what the process wrote.
        }
        reject(
          new Error(
            `the bundle ${target.bundle} did not report: ${error?.message ?? ""} ${stderr.slice(-2000)}`,
          ),
        );
      },
    );
    child.stdin?.end(JSON.stringify([event]));
  });
}
