/**
 * Builds the event AWS Lambda hands a function behind a function URL (payload format 2.0) from a
 * plain HTTP request, so the webhook can be served locally exactly as it runs in Lambda.
 */
import { randomUUID } from "node:crypto";
import type { FunctionUrlEvent } from "../webhook/http.ts";

export interface HttpRequestLike {
  readonly method: string;
  /** Path with optional query, as on the request line: `/v1/clusters/a/b?timeout=10s`. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly body: Buffer;
  readonly sourceIp: string;
}

const TEXT_CONTENT = /^(application\/(json|.*\+json|x-www-form-urlencoded)|text\/)/i;

export function toFunctionUrlEvent(
  request: HttpRequestLike,
  domainName = "localhost",
): FunctionUrlEvent {
  const [rawPath = "/", rawQueryString = ""] = request.url.split("?", 2) as [string?, string?];
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    // Function URLs join repeated headers with commas and lower-case every name.
    if (value !== undefined)
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(",") : String(value);
  }
  const contentType = headers["content-type"] ?? "";
  // Like AWS: bodies that are not text arrive base64-encoded.
  const isBase64Encoded = request.body.length > 0 && !TEXT_CONTENT.test(contentType);
  const queryStringParameters = rawQueryString
    ? Object.fromEntries(new URLSearchParams(rawQueryString))
    : undefined;
  const now = new Date();
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath,
    rawQueryString,
    headers,
    ...(queryStringParameters ? { queryStringParameters } : {}),
    requestContext: {
      accountId: "anonymous",
      apiId: domainName.split(".")[0] ?? domainName,
      domainName,
      domainPrefix: domainName.split(".")[0] ?? domainName,
      http: {
        method: request.method.toUpperCase(),
        path: rawPath,
        protocol: "HTTP/1.1",
        sourceIp: request.sourceIp,
        userAgent: headers["user-agent"] ?? "",
      },
      requestId: randomUUID(),
      routeKey: "$default",
      stage: "$default",
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(request.body.length > 0
      ? { body: isBase64Encoded ? request.body.toString("base64") : request.body.toString("utf8") }
      : {}),
    isBase64Encoded,
  };
}
