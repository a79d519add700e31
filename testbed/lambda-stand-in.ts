/**
 * A stand-in for Lambda's GetAccountSettings (`GET /2016-08-19/account-settings`, restJson1),
 * which moto does not serve: answers the account's concurrency limit and unreserved concurrency a
 * test chooses, and records each call's region (from the SigV4 credential scope) and access key,
 * so a test can see which `--region` and `--profile` reached the Lambda client.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface LambdaCall {
  readonly region: string;
  readonly accessKeyId: string;
}

export interface LambdaStandIn {
  readonly url: string;
  readonly calls: LambdaCall[];
  /** The account's ConcurrentExecutions and UnreservedConcurrentExecutions. */
  limit: number;
  unreserved: number;
  stop(): Promise<void>;
}

// Credential=<key>/<date>/<region>/<service>/aws4_request
const CREDENTIAL = /Credential=([^/]+)\/\d{8}\/([^/]+)\/lambda\/aws4_request/;

export async function startLambdaStandIn(): Promise<LambdaStandIn> {
  const state = { calls: [] as LambdaCall[], limit: 1000, unreserved: 1000 };
  const server = createServer((request, response) => {
    request.resume();
    const scope = CREDENTIAL.exec(request.headers.authorization ?? "");
    const reply = (status: number, body: unknown, type?: string) => {
      response.writeHead(status, {
        "content-type": "application/json",
        ...(type ? { "x-amzn-errortype": type } : {}),
      });
      response.end(JSON.stringify(body));
    };
    if (!scope)
      return reply(403, { message: "Missing Authentication Token" }, "AccessDeniedException");
    if (request.method !== "GET" || request.url?.split("?")[0] !== "/2016-08-19/account-settings")
      return reply(
        404,
        { message: `no ${request.method} ${request.url}` },
        "ResourceNotFoundException",
      );
    state.calls.push({ accessKeyId: scope[1] ?? "", region: scope[2] ?? "" });
    reply(200, {
      AccountLimit: {
        TotalCodeSize: 80_530_636_800,
        CodeSizeUnzipped: 262_144_000,
        CodeSizeZipped: 52_428_800,
        ConcurrentExecutions: state.limit,
        UnreservedConcurrentExecutions: state.unreserved,
      },
      AccountUsage: { TotalCodeSize: 0, FunctionCount: 0 },
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}
