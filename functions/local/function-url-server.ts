/**
 * Serves a Lambda function-URL handler over HTTPS on this machine: each request becomes the
 * payload-2.0 event AWS would build, each result the HTTP response AWS would send. The end-to-end
 * tests register it with a real kube-apiserver; `npm start` uses it for a local demo.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { FunctionUrlEvent, FunctionUrlResult } from "../webhook/http.ts";
import { toFunctionUrlEvent } from "./function-url-event.ts";

export type FunctionUrlHandler = (
  event: FunctionUrlEvent,
  context: { awsRequestId: string },
) => Promise<FunctionUrlResult>;

export interface FunctionUrlServerOptions {
  readonly handler: FunctionUrlHandler;
  readonly tls: { readonly cert: string; readonly key: string };
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  /** Largest request body read; Lambda function URLs accept 6 MB. */
  readonly maxBodyBytes?: number;
  /** Called with every event before it reaches the handler (the tests count and record them). */
  readonly onEvent?: (event: FunctionUrlEvent) => void;
}

export interface FunctionUrlServer {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const FUNCTION_URL_MAX_BODY = 6 * 1024 * 1024;

export async function startFunctionUrlServer(
  options: FunctionUrlServerOptions,
): Promise<FunctionUrlServer> {
  const host = options.host ?? "127.0.0.1";
  let requests = 0;
  const server: Server = createServer(
    { cert: options.tls.cert, key: options.tls.key },
    (request, response) => {
      serve(request, response, `local-${++requests}`).catch((error: unknown) => {
        // What Lambda does when a function throws: a bare 502.
        if (!response.headersSent) response.writeHead(502, { "content-type": "application/json" });
        response.end(JSON.stringify({ message: "Internal Server Error" }));
        process.emitWarning(`function handler failed: ${(error as Error).message}`);
      });
    },
  );
  // kube-apiserver's webhook client keeps idle connections for 90 s; Node closes them after 5 s,
  // and a POST sent on one just as Node closes it fails with "broken pipe", never retried (seen
  // marking 1,000 Secrets in the refresher e2e). Keep them longer than the client does.
  server.keepAliveTimeout = 120_000;

  async function serve(
    request: IncomingMessage,
    response: ServerResponse,
    requestId: string,
  ): Promise<void> {
    const body = await readBody(request, options.maxBodyBytes ?? FUNCTION_URL_MAX_BODY);
    if (body === undefined) {
      response.writeHead(413, { "content-type": "application/json" });
      response.end(JSON.stringify({ message: "Request Entity Too Large" }));
      return;
    }
    const event = toFunctionUrlEvent(
      {
        method: request.method ?? "GET",
        url: request.url ?? "/",
        headers: request.headers,
        body,
        sourceIp: request.socket.remoteAddress ?? "",
      },
      `${host}:${(server.address() as AddressInfo).port}`,
    );
    options.onEvent?.(event);
    const result = await options.handler(event, { awsRequestId: requestId });
    const payload = result.isBase64Encoded
      ? Buffer.from(result.body ?? "", "base64")
      : Buffer.from(result.body ?? "");
    const headers: OutgoingHttpHeaders = { "content-length": payload.length };
    for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
    response.writeHead(result.statusCode ?? 200, headers);
    response.end(payload);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://${host}:${port}`,
    port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
