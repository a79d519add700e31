/**
 * A minimal DynamoDB stand-in speaking the real awsJson1_0 protocol for GetItem only, answering
 * from memory. The benchmark uses it beside moto to separate the webhook's own cold cost from
 * moto's (a Python server: 15–25 ms per new TLS connection on this machine).
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";

export interface RecordTableStandIn {
  readonly url: string;
  stop(): Promise<void>;
}

/** `items`: by table name, then by `clusterId`, the item GetItem returns. */
export async function startRecordTableStandIn(
  items: Readonly<Record<string, Readonly<Record<string, Record<string, AttributeValue>>>>>,
  tls: { readonly cert: string; readonly key: string },
): Promise<RecordTableStandIn> {
  const server = createServer(tls, async (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const input = JSON.parse(Buffer.concat(chunks).toString() || "{}") as {
      TableName?: string;
      Key?: { clusterId?: { S?: string } };
    };
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, {
        "content-type": "application/x-amz-json-1.0",
        "x-amzn-requestid": randomUUID(),
      });
      response.end(JSON.stringify(body));
    };
    if (String(request.headers["x-amz-target"] ?? "") !== "DynamoDB_20120810.GetItem")
      return reply(400, { __type: "com.amazon.coral.service#UnknownOperationException" });
    const table = items[input.TableName ?? ""];
    if (table === undefined)
      return reply(400, {
        __type: "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
        message: "Requested resource not found",
      });
    const item = table[input.Key?.clusterId?.S ?? ""];
    reply(200, item === undefined ? {} : { Item: item });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
