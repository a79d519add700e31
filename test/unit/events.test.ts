import { describe, expect, it } from "vitest";
import { redactWebhookTokens } from "../../functions/core/auth.ts";
import {
  type EventSubject,
  eventName,
  eventNamespace,
  microTime,
  newEvent,
  nextSeries,
  truncateNote,
} from "../../functions/core/events.ts";

const secret: EventSubject = {
  kind: "Secret",
  name: "ecr-pull",
  namespace: "team-a",
  uid: "0b7c1f5e-0000-4000-8000-000000000001",
};
const namespace: EventSubject = { kind: "Namespace", name: "team-b", namespace: "", uid: "u-2" };
const options = { labelPrefix: "ecr-anywhere.centml.ai", reportingInstance: "prod", nowMs: 0 };

describe("Kubernetes Events", () => {
  it("names one Event per object and reason, stable across runs, new for a recreated object", () => {
    const name = eventName(secret, "RefreshFailed");
    expect(name).toMatch(/^ecr-pull\.ecr-anywhere\.[0-9a-f]{16}$/);
    expect(eventName(secret, "RefreshFailed")).toBe(name);
    expect(eventName(secret, "Refreshed")).not.toBe(name);
    expect(eventName({ ...secret, uid: "another" }, "RefreshFailed")).not.toBe(name);
    const long = eventName({ ...secret, name: "s".repeat(253) }, "RefreshFailed");
    expect(long.length).toBeLessThanOrEqual(253);
  });

  it("puts a Secret's Events beside it and a Namespace's in default, as the API server requires", () => {
    expect(eventNamespace(secret)).toBe("team-a");
    expect(eventNamespace(namespace)).toBe("default");
    expect(
      newEvent({ subject: namespace, reason: "EnsureFailed", note: "x" }, options),
    ).toMatchObject({
      metadata: { namespace: "default" },
      regarding: { apiVersion: "v1", kind: "Namespace", name: "team-b", uid: "u-2" },
      type: "Warning",
      action: "Ensure",
    });
    const body = newEvent({ subject: namespace, reason: "EnsureFailed", note: "x" }, options);
    expect(body.regarding).not.toHaveProperty("namespace");
  });

  it("builds an events.k8s.io/v1 body the API server accepts: MicroTime, controller, limits", () => {
    const body = newEvent(
      { subject: secret, reason: "RefreshFailed", note: "n".repeat(5000) },
      { ...options, nowMs: Date.UTC(2026, 10, 23, 19, 0, 0, 123) },
    );
    expect(body).toMatchObject({
      apiVersion: "events.k8s.io/v1",
      eventTime: "2026-11-23T19:00:00.123000Z",
      reportingController: "ecr-anywhere.centml.ai/refresher",
      reportingInstance: "prod",
      reason: "RefreshFailed",
      type: "Warning",
      regarding: { kind: "Secret", name: "ecr-pull", namespace: "team-a", uid: secret.uid },
    });
    // kube-apiserver counts bytes: the cut note with its ellipsis fits exactly.
    expect(Buffer.byteLength(body.note, "utf8")).toBe(1024);
    expect(body.metadata.annotations).toEqual({
      "ecr-anywhere.centml.ai/refresh-failing": "true",
      "ecr-anywhere.centml.ai/latest-problem": body.note,
    });
    expect(newEvent({ subject: secret, reason: "Refreshed", note: "ok" }, options)).toMatchObject({
      type: "Normal",
      metadata: { annotations: {} },
    });
  });

  it("counts repeats as events.k8s.io/v1 series do: 2 after the first, then one more each time", () => {
    expect(nextSeries(undefined, 0)).toEqual({
      count: 2,
      lastObservedTime: "1970-01-01T00:00:00.000000Z",
    });
    expect(nextSeries({ count: 7, lastObservedTime: microTime(0) }, 1000).count).toBe(8);
  });

  it("never carries a webhook token from kube-apiserver's error text", () => {
    const message =
      'failed calling webhook "secrets.ecr-anywhere.centml.ai": failed to call webhook: Post "https://abc.lambda-url.us-east-1.on.aws/v1/clusters/prod/SeCrEt-ToKeN_123?timeout=10s": context deadline exceeded';
    const redacted = redactWebhookTokens(message);
    expect(redacted).not.toContain("SeCrEt-ToKeN_123");
    expect(redacted).toContain("/v1/clusters/prod/<redacted>?timeout=10s");
    expect(truncateNote(message)).not.toContain("SeCrEt-ToKeN_123");
    const multiByte = truncateNote("ü".repeat(2000));
    expect(Buffer.byteLength(multiByte, "utf8")).toBeLessThanOrEqual(1024);
    expect(multiByte.endsWith("…")).toBe(true);
    // Header-authenticated URLs carry no token: nothing to remove.
    expect(redactWebhookTokens("Post https://h/v1/clusters/prod?timeout=10s")).toBe(
      "Post https://h/v1/clusters/prod?timeout=10s",
    );
  });
});
