/** What preflight and doctor conclude from what they read: the arithmetic and the edges. */
import { describe, expect, it } from "vitest";
import {
  bootstrapFinding,
  concurrencyFinding,
  healthFinding,
  recordTableFinding,
  targetStackFinding,
} from "../../cli/core/findings.ts";
import { markConcurrencyFor } from "../../functions/core/concurrency.ts";

const bootstrap = (status: string, version?: string) =>
  bootstrapFinding({
    toolkitStack: "CDKToolkit",
    account: "123456789012",
    region: "eu-west-1",
    stack: { status, outputs: version === undefined ? {} : { BootstrapVersion: version } },
  });

describe("CDK bootstrap", () => {
  it("needs a settled toolkit stack of version 6 or later", () => {
    expect(bootstrap("UPDATE_COMPLETE", "6").ok).toBe(true);
    expect(bootstrap("CREATE_COMPLETE", "5")).toMatchObject({
      ok: false,
      fix: "npx cdk bootstrap aws://123456789012/eu-west-1 in your deploy app (docs/deploy.md)",
    });
    expect(bootstrap("ROLLBACK_COMPLETE", "28").fix).toMatch(/must be deleted first/);
    expect(bootstrap("UPDATE_IN_PROGRESS", "28").ok).toBe(false);
    expect(bootstrap("UPDATE_ROLLBACK_COMPLETE", "28").ok).toBe(true);
    expect(bootstrap("CREATE_COMPLETE").detail).toMatch(/no BootstrapVersion output/);
  });
});

describe("the stack to deploy", () => {
  it("owns its tables once settled; a failed creation is deleted and created again, so they are not its own", () => {
    expect(targetStackFinding("S", undefined)).toMatchObject({
      exists: false,
      finding: { ok: true },
    });
    expect(targetStackFinding("S", "UPDATE_COMPLETE")).toMatchObject({
      exists: true,
      finding: { ok: true },
    });
    expect(targetStackFinding("S", "ROLLBACK_COMPLETE")).toMatchObject({
      exists: false,
      finding: { ok: true, detail: expect.stringContaining("deletes it and creates it again") },
    });
    expect(targetStackFinding("S", "UPDATE_IN_PROGRESS")).toMatchObject({
      finding: { ok: false, fix: expect.stringContaining("wait until it settles") },
    });
    // A retained table is then left behind, and preflight says so.
    const { exists } = targetStackFinding("S", "ROLLBACK_COMPLETE");
    expect(
      recordTableFinding({ table: "r-webhook", status: "ACTIVE", stackExists: exists }).ok,
    ).toBe(false);
  });
});

describe("Lambda concurrency", () => {
  const settings = (reserved?: number, chosen?: number, fanout?: number) => ({
    reserved,
    markConcurrency: markConcurrencyFor(reserved, chosen),
    fanoutConcurrency: fanout,
  });

  it("a reservation must leave 100 unreserved, exactly", () => {
    expect(concurrencyFinding({ limit: 1000, unreserved: 150 }, settings(50)).ok).toBe(true);
    expect(concurrencyFinding({ limit: 1000, unreserved: 149 }, settings(50))).toMatchObject({
      ok: false,
      fix: expect.stringContaining("at least 1001"),
    });
  });

  it("on an upgrade, does not count the deployed reservation twice", () => {
    // unreserved already excludes what the deployed webhook reserves.
    const upgrade = { ...settings(50), stackExists: true };
    expect(concurrencyFinding({ limit: 1000, unreserved: 149 }, upgrade)).toMatchObject({
      ok: true,
      detail: expect.stringContaining("raising it by D needs 149 - D >= 100"),
    });
  });

  it("a reservation keeps the marks to half of it", () => {
    expect(concurrencyFinding({ limit: 1000, unreserved: 1000 }, settings(10, 6)).fix).toBe(
      "set refresherMarkConcurrency to at most 5",
    );
    expect(settings(8).markConcurrency).toBe(4);
  });

  it("without one, a refresh (runs and marks) may take half the unreserved pool", () => {
    // inline: 1 run + 10 marks = 11, so 22 are needed.
    expect(concurrencyFinding({ limit: 22, unreserved: 22 }, settings()).ok).toBe(true);
    expect(concurrencyFinding({ limit: 21, unreserved: 21 }, settings()).ok).toBe(false);
    // fan-out: 1 run + 20 workers + 10 marks = 31, so 62.
    expect(
      concurrencyFinding({ limit: 61, unreserved: 61 }, settings(undefined, undefined, 20)),
    ).toMatchObject({
      ok: false,
      fix: expect.stringContaining("at least 62"),
    });
  });
});

describe("health", () => {
  const answer = (received: boolean) => ({
    status: 200,
    body: JSON.stringify({
      service: "ecr-anywhere-webhook",
      version: "0.1.0",
      authorizationHeaderReceived: received,
    }),
  });

  it("asks for the header to arrive in header form, and not in path form", () => {
    expect(healthFinding("header", answer(true)).ok).toBe(true);
    expect(healthFinding("header", answer(false)).ok).toBe(false);
    expect(healthFinding("path", answer(false)).ok).toBe(true);
    expect(healthFinding("path", answer(true)).ok).toBe(false);
  });

  it("tells an older webhook, or something else at the URL, from the health answer", () => {
    expect(healthFinding("path", { status: 403, body: '{"kind":"Status"}' }).detail).toMatch(
      /HTTP 403/,
    );
    expect(healthFinding("path", { status: 200, body: "<html>" }).ok).toBe(false);
    expect(healthFinding("path", { failed: "ECONNREFUSED" }).detail).toMatch(/ECONNREFUSED/);
  });
});

describe("record tables", () => {
  it("a table the stack does not own blocks a new stack; its own does not", () => {
    expect(recordTableFinding({ table: "t", status: undefined, stackExists: false }).ok).toBe(true);
    expect(recordTableFinding({ table: "t", status: "ACTIVE", stackExists: true }).ok).toBe(true);
    expect(recordTableFinding({ table: "t", status: "ACTIVE", stackExists: false }).ok).toBe(false);
  });
});
