/** The Lambda function URL side of the webhook: reading requests, shaping responses. */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";

export type FunctionUrlEvent = APIGatewayProxyEventV2;
export type FunctionUrlResult = APIGatewayProxyStructuredResultV2;

export type BodyRead =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly result: FunctionUrlResult };

/** The request body as text, bounded in size before and after base64 decoding. */
export function readBody(event: FunctionUrlEvent, maxBytes: number): BodyRead {
  const raw = event.body ?? "";
  // Base64 is 4/3 of its content: refuse oversized input before decoding it.
  const encodedLimit = event.isBase64Encoded ? Math.ceil((maxBytes * 4) / 3) + 4 : maxBytes;
  if (raw.length > encodedLimit)
    return { ok: false, result: failure(413, "Request body too large") };
  const text = event.isBase64Encoded ? Buffer.from(raw, "base64").toString("utf8") : raw;
  if (Buffer.byteLength(text) > maxBytes)
    return { ok: false, result: failure(413, "Request body too large") };
  if (text.length === 0) return { ok: false, result: failure(400, "Request body is empty") };
  return { ok: true, text };
}

export function json(statusCode: number, body: unknown): FunctionUrlResult {
  return {
    statusCode,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
}

/**
 * A failed request, answered as a Kubernetes `Status` so the API server can decode it and show the
 * message to the user instead of "unknown".
 */
export function failure(code: number, message: string): FunctionUrlResult {
  return json(code, {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    code,
  });
}

/** The one answer every authentication failure gets: it tells a caller nothing. */
export const FORBIDDEN: FunctionUrlResult = failure(403, "Forbidden");
