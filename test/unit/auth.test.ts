import { describe, expect, it } from "vitest";
import {
  parseWebhookCaller,
  sha256Hex,
  sourceAllowed,
  tokenMatches,
} from "../../functions/core/auth.ts";
import { newWebhookToken } from "../support/admission.ts";

describe("parseWebhookCaller", () => {
  const { token } = newWebhookToken();

  it("reads the cluster id and the token from the path", () => {
    expect(parseWebhookCaller(`/v1/clusters/gke-prod/${token}`, undefined)).toEqual({
      clusterId: "gke-prod",
      token,
      via: "path",
    });
  });

  it("reads the token from Authorization: Bearer when the path carries none", () => {
    expect(parseWebhookCaller("/v1/clusters/kubeadm-1", `Bearer ${token}`)).toEqual({
      clusterId: "kubeadm-1",
      token,
      via: "header",
    });
  });

  it.each([
    ["no token anywhere", "/v1/clusters/kubeadm-1", undefined],
    ["a token in both places", `/v1/clusters/kubeadm-1/${token}`, `Bearer ${token}`],
    ["another scheme", "/v1/clusters/kubeadm-1", `Basic ${token}`],
    ["a short token", "/v1/clusters/kubeadm-1", `Bearer ${"a".repeat(42)}`],
    ["trailing text", "/v1/clusters/kubeadm-1", `Bearer ${token} x`],
    ["an unreadable header with a path token", `/v1/clusters/kubeadm-1/${token}`, "Bearer"],
  ])("rejects %s", (_, path, authorization) => {
    expect(parseWebhookCaller(path, authorization)).toBeUndefined();
  });

  it.each([
    `/v1/clusters/GKE/${"a".repeat(43)}`,
    `/v1/clusters/-bad/${"a".repeat(43)}`,
    `/v1/clusters/${"a".repeat(64)}/${"a".repeat(43)}`,
    `/v1/clusters/gke/${"a".repeat(42)}`,
    `/v1/clusters/gke/${"a".repeat(43)}=`,
    `/v1/clusters/gke/${"a".repeat(43)}/extra`,
    `/v2/clusters/gke/${"a".repeat(43)}`,
    "/",
    "",
  ])("rejects %s", (path) => {
    expect(parseWebhookCaller(path, undefined)).toBeUndefined();
  });
});

describe("tokenMatches", () => {
  const current = newWebhookToken();
  const next = newWebhookToken();

  it("accepts the current token and, during rotation, the next one", () => {
    expect(tokenMatches(current.token, [current.sha256])).toBe(true);
    expect(tokenMatches(current.token, [current.sha256, next.sha256])).toBe(true);
    expect(tokenMatches(next.token, [current.sha256, next.sha256])).toBe(true);
  });

  it("rejects any other token, and malformed stored hashes", () => {
    expect(tokenMatches(next.token, [current.sha256])).toBe(false);
    expect(tokenMatches(current.sha256, [current.sha256])).toBe(false);
    expect(tokenMatches(current.token, ["abc"])).toBe(false);
    expect(tokenMatches(current.token, [])).toBe(false);
  });

  it("hashes with SHA-256", () => {
    expect(sha256Hex("abc")).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });
});

describe("sourceAllowed", () => {
  it("allows everyone when no CIDRs are set", () => {
    expect(sourceAllowed("198.51.100.1", undefined)).toBe(true);
    expect(sourceAllowed(undefined, [])).toBe(true);
  });

  it("checks IPv4 and IPv6 ranges", () => {
    const cidrs = ["203.0.113.0/24", "2001:db8::/32"];
    expect(sourceAllowed("203.0.113.77", cidrs)).toBe(true);
    expect(sourceAllowed("203.0.114.1", cidrs)).toBe(false);
    expect(sourceAllowed("2001:db8::1", cidrs)).toBe(true);
    expect(sourceAllowed("2001:db9::1", cidrs)).toBe(false);
    expect(sourceAllowed("not-an-ip", cidrs)).toBe(false);
    expect(sourceAllowed(undefined, cidrs)).toBe(false);
  });
});
