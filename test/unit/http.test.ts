import { describe, expect, it } from "vitest";
import { toFunctionUrlEvent } from "../../functions/local/function-url-event.ts";
import { readBody } from "../../functions/webhook/http.ts";

function event(body: string, contentType = "application/json") {
  return toFunctionUrlEvent({
    method: "POST",
    url: "/v1/clusters/c/t?timeout=10s",
    headers: { "Content-Type": contentType, "X-Multi": ["a", "b"] },
    body: Buffer.from(body),
    sourceIp: "198.51.100.4",
  });
}

describe("function URL events", () => {
  it("are built as AWS builds them: raw path and query, lower-case headers, source address", () => {
    const built = event("{}");
    expect(built).toMatchObject({
      version: "2.0",
      rawPath: "/v1/clusters/c/t",
      rawQueryString: "timeout=10s",
      queryStringParameters: { timeout: "10s" },
      headers: { "content-type": "application/json", "x-multi": "a,b" },
      requestContext: {
        http: { method: "POST", path: "/v1/clusters/c/t", sourceIp: "198.51.100.4" },
      },
      body: "{}",
      isBase64Encoded: false,
    });
  });

  it("carry non-text bodies base64-encoded", () => {
    const built = event('{"a":1}', "application/octet-stream");
    expect(built.isBase64Encoded).toBe(true);
    expect(built.body).toBe(Buffer.from('{"a":1}').toString("base64"));
  });
});

describe("readBody", () => {
  it("decodes base64 bodies", () => {
    expect(readBody(event('{"a":1}', "application/octet-stream"), 100)).toEqual({
      ok: true,
      text: '{"a":1}',
    });
  });

  it("refuses bodies over the limit before and after decoding, and empty bodies", () => {
    expect(readBody(event("x".repeat(101)), 100)).toMatchObject({
      ok: false,
      result: { statusCode: 413 },
    });
    expect(readBody(event("x".repeat(101), "application/octet-stream"), 100)).toMatchObject({
      ok: false,
      result: { statusCode: 413 },
    });
    // Multi-byte characters count as bytes, not as characters.
    expect(readBody(event("é".repeat(60)), 100)).toMatchObject({
      ok: false,
      result: { statusCode: 413 },
    });
    expect(readBody(event(""), 100)).toMatchObject({ ok: false, result: { statusCode: 400 } });
    expect(readBody(event("x".repeat(100)), 100)).toEqual({ ok: true, text: "x".repeat(100) });
  });
});
