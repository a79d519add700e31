/**
 * A minimal Secrets Manager stand-in speaking the real awsJson1_1 protocol for GetSecretValue
 * only, answering from memory. The benchmark uses it beside moto to separate the webhook's own cold
 * cost from moto's (a Python server: 15–25 ms per new TLS connection on this machine).
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";

export interface SecretsManagerStandIn {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startSecretsManagerStandIn(
  secrets: Readonly<Record<string, string>>,
  tls: { readonly cert: string; readonly key: string },
): Promise<SecretsManagerStandIn> {
  const server = createServer(tls, async (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const { SecretId } = JSON.parse(Buffer.concat(chunks).toString() || "{}") as {
      SecretId?: string;
    };
    const value = SecretId === undefined ? undefined : secrets[SecretId];
    const target = String(request.headers["x-amz-target"] ?? "");
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, {
        "content-type": "application/x-amz-json-1.1",
        "x-amzn-requestid": randomUUID(),
      });
      response.end(JSON.stringify(body));
    };
    if (target !== "secretsmanager.GetSecretValue")
      return reply(400, { __type: "UnknownOperationException" });
    if (value === undefined) {
      return reply(400, {
        __type: "ResourceNotFoundException",
        message: "Secrets Manager can't find the specified secret.",
      });
    }
    reply(200, {
      ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${SecretId}-AbCdEf`,
      Name: SecretId,
      SecretString: value,
      VersionId: randomUUID(),
      VersionStages: ["AWSCURRENT"],
      CreatedDate: Date.now() / 1000,
    });
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
