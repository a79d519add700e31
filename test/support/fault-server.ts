/** An HTTP endpoint that answers every request with one canned AWS error: fault injection only. */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface CannedReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

export interface FaultServer {
  readonly url: string;
  requests: number;
  stop(): Promise<void>;
}

export async function startFaultServer(reply: CannedReply): Promise<FaultServer> {
  const state = { requests: 0 };
  const server = createServer((request, response) => {
    state.requests++;
    request.resume();
    request.on("end", () => {
      response.writeHead(reply.status, {
        "content-type": reply.contentType,
        "x-amzn-requestid": "fault",
      });
      response.end(reply.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

export const STS_ACCESS_DENIED: CannedReply = {
  status: 403,
  contentType: "text/xml",
  body: `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:sts::123456789012:assumed-role/ecr-anywhere-webhook/fn is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/ecr-pull-gke</Message></Error><RequestId>fault</RequestId></ErrorResponse>`,
};

export const DYNAMODB_INTERNAL_ERROR: CannedReply = {
  status: 500,
  contentType: "application/x-amz-json-1.0",
  body: JSON.stringify({
    __type: "com.amazonaws.dynamodb.v20120810#InternalServerError",
    message: "internal failure",
  }),
};

export interface FaultProxy {
  readonly url: string;
  /** Requests answered with the fault so far. */
  faults: number;
  /** Requests passed on to the target. */
  forwarded: number;
  /** The bodies of the requests passed on, for asserting what a client sent. */
  readonly bodies: string[];
  /** The access key that signed each request passed on (SigV4 credential scope), in order. */
  readonly signers: string[];
  stop(): Promise<void>;
}

/**
 * Forwards every request to `target` (moto) except those whose `x-amz-target` header matches,
 * which get the canned reply: one AWS operation fails while the rest of the service works.
 */
export async function startFaultProxy(
  target: string,
  failing: RegExp,
  reply: CannedReply,
  /** Rewrites each answer passed on (for example its times, to follow a test's clock). */
  rewrite: (body: string) => string = (body) => body,
): Promise<FaultProxy> {
  const state = { faults: 0, forwarded: 0, bodies: [] as string[], signers: [] as string[] };
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    if (failing.test(String(request.headers["x-amz-target"] ?? ""))) {
      state.faults++;
      response.writeHead(reply.status, { "content-type": reply.contentType });
      response.end(reply.body);
      return;
    }
    state.forwarded++;
    state.bodies.push(Buffer.concat(chunks).toString("utf8"));
    state.signers.push(
      /Credential=([^/]+)\//.exec(String(request.headers.authorization ?? ""))?.[1] ?? "",
    );
    const headers = Object.entries(request.headers).filter(
      (entry): entry is [string, string] => typeof entry[1] === "string" && entry[0] !== "host",
    );
    const answer = await fetch(`${target}${request.url}`, {
      method: request.method ?? "POST",
      headers,
      ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
    });
    // The body is passed on whole and decoded: framing headers would no longer be true.
    const passed = [...answer.headers].filter(
      ([name]) => !["content-length", "content-encoding", "transfer-encoding"].includes(name),
    );
    response.writeHead(answer.status, Object.fromEntries(passed));
    response.end(rewrite(Buffer.from(await answer.arrayBuffer()).toString("utf8")));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/**
 * STS answers whose `<Expiration>` follows a test's clock: moto dates sessions by the real time,
 * and a webhook on a moved clock would otherwise see each one as long over.
 */
export function expirationOnClock(clock: () => number): (body: string) => string {
  return (body) =>
    body.replace(
      /<Expiration>([^<]+)<\/Expiration>/g,
      (_, iso: string) =>
        `<Expiration>${new Date(clock() + (Date.parse(iso) - Date.now())).toISOString()}</Expiration>`,
    );
}
