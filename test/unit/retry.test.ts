import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { backoffMs, isTransientMarkFailure, MARK_BACKOFF } from "../../functions/core/retry.ts";

describe("transient mark failures", () => {
  it.each([
    // kube-apiserver's words when the function URL answered 429 (recorded on the real API server)
    'mark Secret a/b: HTTP 500: Internal error occurred: failed calling webhook "secrets.x": failed to call webhook: the server has received too many requests and has asked us to try again later',
    'mark Secret a/b: HTTP 500: failed calling webhook "secrets.x": the server responded with status code 429',
    'mark Secret a/b: HTTP 403: admission webhook "secrets.x" denied the request: ecr-anywhere: ECR is throttling GetAuthorizationToken in us-east-1; retry',
    'mark Secret a/b: HTTP 500: failed calling webhook "secrets.x": the server responded with status code 503',
  ])("retries %s", (message) => {
    expect(isTransientMarkFailure(500, message)).toBe(true);
  });

  it.each([
    'mark Secret a/b: HTTP 403: admission webhook "secrets.x" denied the request: ecr-anywhere: Secret a/b: this cluster may not use registry x',
    'mark Secret a/b: HTTP 500: failed calling webhook "secrets.x": the server responded with status code 403',
    'mark Secret a/b: HTTP 404: secrets "b" not found',
    "mark Secret a/b: TypeError: fetch failed (ECONNREFUSED)",
  ])("does not retry %s", (message) => {
    expect(isTransientMarkFailure(undefined, message)).toBe(false);
  });

  it("retries the API server's own 429", () => {
    expect(isTransientMarkFailure(429, "anything")).toBe(true);
  });
});

describe("backoff", () => {
  it("waits up to base x 2^attempt, capped, with full jitter", () => {
    expect(backoffMs(0, 0.999)).toBe(499);
    expect(backoffMs(3, 0.5)).toBe(2000);
    expect(backoffMs(10, 0.999)).toBe(7992);
    fc.assert(
      fc.property(
        fc.nat(30),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, random) => {
          const wait = backoffMs(attempt, random);
          return (
            wait >= 0 && wait < Math.min(MARK_BACKOFF.capMs, MARK_BACKOFF.baseMs * 2 ** attempt)
          );
        },
      ),
    );
  });
});
