import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkKubeconfig,
  needsRenewal,
  serviceAccountToken,
  withToken,
} from "../../functions/core/kubeconfig.ts";
import { isStale, refreshBeforeMs, secretTimes } from "../../functions/core/staleness.ts";
import { names } from "../support/admission.ts";

const HOUR = 3600_000;
const T0 = Date.UTC(2026, 10, 22, 0, 0, 0);

describe("staleness (contract: now >= expires_at - min(refreshBefore, lifetime / 2))", () => {
  it("uses the configured refreshBefore for 12 h credentials", () => {
    const times = { updatedAtMs: T0, expiresAtMs: T0 + 12 * HOUR };
    expect(refreshBeforeMs(times, 6 * HOUR)).toBe(6 * HOUR);
    expect(isStale(times, T0 + 6 * HOUR - 1, 6 * HOUR)).toBe(false);
    expect(isStale(times, T0 + 6 * HOUR, 6 * HOUR)).toBe(true);
  });

  it("refreshes 1 h assumed-role credentials at half their life, not immediately", () => {
    const times = { updatedAtMs: T0, expiresAtMs: T0 + HOUR };
    expect(refreshBeforeMs(times, 6 * HOUR)).toBe(HOUR / 2);
    expect(isStale(times, T0 + 29 * 60_000, 6 * HOUR)).toBe(false);
    expect(isStale(times, T0 + 30 * 60_000, 6 * HOUR)).toBe(true);
  });

  it("treats a missing or unparseable expires_at as stale, and a missing updated_at as the configured value", () => {
    expect(isStale(secretTimes({}, names), T0, 6 * HOUR)).toBe(true);
    expect(
      isStale(secretTimes({ [names.expiresAtAnnotation]: "tomorrow" }, names), T0, 6 * HOUR),
    ).toBe(true);
    const noUpdated = secretTimes({ [names.expiresAtAnnotation]: "2026-11-22T12:00:00Z" }, names);
    expect(refreshBeforeMs(noUpdated, 6 * HOUR)).toBe(6 * HOUR);
    expect(isStale(noUpdated, T0 + 5 * HOUR, 6 * HOUR)).toBe(false);
    expect(isStale(noUpdated, T0 + 6 * HOUR, 6 * HOUR)).toBe(true);
  });

  it("never calls a just-written Secret stale (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 48 * 3600 }),
        fc.integer({ min: 1, max: 11 * 3600 }),
        (lifetimeS, configuredS) => {
          const times = { updatedAtMs: T0, expiresAtMs: T0 + lifetimeS * 1000 };
          expect(isStale(times, T0, configuredS * 1000)).toBe(false);
          expect(isStale(times, times.expiresAtMs, configuredS * 1000)).toBe(true);
        },
      ),
    );
  });
});

function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "RS256" })}.${part(claims)}.signature`;
}

function kubeconfigWith(
  user: Record<string, unknown>,
  cluster: Record<string, unknown> = { server: "https://k", "certificate-authority-data": "Y2E=" },
) {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "c", cluster }],
    users: [{ name: "u", user }],
    contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
    "current-context": "ctx",
  });
}

describe("kubeconfig checks", () => {
  it("accepts inline tokens and client certificates", () => {
    expect(checkKubeconfig(kubeconfigWith({ token: "t" }))).toEqual({ ok: true });
    expect(
      checkKubeconfig(
        kubeconfigWith({ "client-certificate-data": "Y2VydA==", "client-key-data": "a2V5" }),
      ),
    ).toEqual({ ok: true });
  });

  it.each([
    [{ exec: { command: "/bin/sh", args: ["-c", "curl evil"] } }, "exec"],
    [{ "auth-provider": { name: "gcp" } }, "auth-provider"],
    [{ tokenFile: "/var/run/secrets/token" }, "tokenFile"],
    [{ "client-certificate": "/etc/cert", "client-key": "/etc/key" }, "client-certificate"],
  ])("refuses users that run programs or read files (%j)", (user, field) => {
    const check = checkKubeconfig(kubeconfigWith(user));
    expect(check.ok).toBe(false);
    expect(!check.ok && check.error).toContain(field);
  });

  it("refuses CA files and disabled TLS verification", () => {
    expect(
      checkKubeconfig(
        kubeconfigWith({ token: "t" }, { server: "https://k", "certificate-authority": "/ca" }),
      ).ok,
    ).toBe(false);
    expect(
      checkKubeconfig(
        kubeconfigWith({ token: "t" }, { server: "https://k", "insecure-skip-tls-verify": true }),
      ).ok,
    ).toBe(false);
    expect(checkKubeconfig("{not yaml: [").ok).toBe(false);
    expect(checkKubeconfig("apiVersion: v1\nkind: Config\n").ok).toBe(false);
  });

  const withServer = (server: string) =>
    kubeconfigWith({ token: "t" }, { server, "certificate-authority-data": "Y2E=" });

  it.each([
    ["http://k8s.example.com", /is not https: the refresher sends its token only over TLS/],
    ["https://127.0.0.1:6443", /loopback, link-local or metadata address/],
    ["https://127.0.0.1:9001", /loopback/], // AWS_LAMBDA_RUNTIME_API
    ["https://localhost:6443", /loopback/],
    ["https://[::1]:6443", /loopback/],
    ["https://169.254.169.254", /metadata/],
    ["https://[fd00:ec2::254]", /metadata/],
    ["https://[fe80::1]:6443", /link-local/],
    ["https://0.0.0.0:6443", /loopback/],
    ["https://[::ffff:127.0.0.1]:6443", /loopback/],
    ["not a url", /is not a URL/],
  ])("refuses the server %s, saying why", (server, problem) => {
    const check = checkKubeconfig(withServer(server));
    expect(check.ok).toBe(false);
    expect(!check.ok && check.error).toMatch(problem);
  });

  it("accepts public and private https servers, and local ones only when a test bed allows them", () => {
    for (const server of [
      "https://k8s.example.com:6443",
      "https://10.0.0.5:6443",
      "https://[2001:db8::1]",
    ])
      expect(checkKubeconfig(withServer(server))).toEqual({ ok: true });
    expect(
      checkKubeconfig(withServer("https://127.0.0.1:6443"), { allowLocalServers: true }),
    ).toEqual({
      ok: true,
    });
    // Plain HTTP stays refused even there: the token would travel in clear.
    expect(
      checkKubeconfig(withServer("http://127.0.0.1:6443"), { allowLocalServers: true }).ok,
    ).toBe(false);
  });
});

describe("ServiceAccount token renewal", () => {
  const claims = {
    iat: T0 / 1000,
    exp: T0 / 1000 + 24 * 3600,
    "kubernetes.io": {
      namespace: "ecr-anywhere",
      serviceaccount: { name: "ecr-anywhere-refresher", uid: "u" },
    },
  };

  it("reads the ServiceAccount and lifetime from a bound token", () => {
    expect(serviceAccountToken(kubeconfigWith({ token: jwt(claims) }))).toEqual({
      namespace: "ecr-anywhere",
      name: "ecr-anywhere-refresher",
      issuedAtMs: T0,
      expiresAtMs: T0 + 24 * HOUR,
    });
    expect(serviceAccountToken(kubeconfigWith({ token: "static-token" }))).toBeUndefined();
    expect(serviceAccountToken(kubeconfigWith({ token: jwt({ sub: "x" }) }))).toBeUndefined();
  });

  it("renews once half the lifetime has passed", () => {
    const token = { namespace: "n", name: "s", issuedAtMs: T0, expiresAtMs: T0 + 24 * HOUR };
    expect(needsRenewal(token, T0 + 12 * HOUR - 1)).toBe(false);
    expect(needsRenewal(token, T0 + 12 * HOUR)).toBe(true);
  });

  it("replaces only the current user's token", () => {
    const renewed = withToken(kubeconfigWith({ token: "old" }), "new-token");
    expect(renewed).toContain("token: new-token");
    expect(renewed).not.toContain("old");
    expect(checkKubeconfig(renewed)).toEqual({ ok: true });
  });
});
