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

export const SECRETS_MANAGER_INTERNAL_ERROR: CannedReply = {
  status: 500,
  contentType: "application/x-amz-json-1.1",
  body: JSON.stringify({ __type: "InternalServiceError", message: "internal failure" }),
};
