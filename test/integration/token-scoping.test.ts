/**
 * Token scoping through the real SDK (docs/contract.md, "Token scoping"): a cluster without a
 * role of its own gets its private-ECR token from a federated session of the token broker, whose
 * key the webhook reads from the token table, under a session policy naming exactly its record's
 * registries (or repositories). A recording proxy in front of moto's STS shows what was asked;
 * the ECR stand-in shows which credentials minted each token. Two clusters with different
 * registries never share a token; a session too short for a full 12 h token is not reused; what is
 * recorded is what the refresher plans with.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { DynamoBrokerKeyStore } from "../../functions/adapters/broker-key-store.ts";
import { isStale, secretTimes } from "../../functions/core/staleness.ts";
import { createTelemetry } from "../../functions/telemetry.ts";
import { createWebhookFromEnv, type Webhook } from "../../functions/webhook/webhook.ts";
import { createTokenTable, localAwsEnv, putClusterRecord } from "../../testbed/aws-env.ts";
import { type EcrStandIn, startEcrStandIn } from "../../testbed/ecr-stand-in.ts";
import {
  admissionReview,
  applied,
  decodeDockerConfig,
  managedSecret,
  names,
  newWebhookToken,
  webhookEvent,
} from "../support/admission.ts";
import { restoreEnv } from "../support/env.ts";
import { type FaultProxy, STS_ACCESS_DENIED, startFaultProxy } from "../support/fault-server.ts";
import { type CapturedOutput, captureOutput } from "../support/output.ts";

const A = "111111111111.dkr.ecr.us-east-1.amazonaws.com";
const A_WEST = "111111111111.dkr.ecr.eu-west-1.amazonaws.com";
const B = "222222222222.dkr.ecr.us-east-1.amazonaws.com";
const TEAM_A_REPOSITORIES = ["arn:aws:ecr:us-east-1:111111111111:repository/team-a/*"];
const PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"];
const BROKER_KEY = {
  accessKeyId: "AKIABROKERTESTKEY001",
  secretAccessKey: "broker-test-secret-access-key",
};
/** moto answers GetFederationToken with this fixed example key. */
const MOTO_FEDERATED_KEY = "AKIAIOSFODNN7EXAMPLE";
const HOUR = 3600_000;
const motoUrl = inject("motoUrl");
const savedEnv = { ...process.env };
const tokens = {
  teamA: newWebhookToken(),
  teamB: newWebhookToken(),
  teamAToo: newWebhookToken(),
  teamANarrow: newWebhookToken(),
  twoRegions: newWebhookToken(),
};
let ecr: EcrStandIn;
let sts: FaultProxy;
let dynamo: DynamoDBClient;
let output: CapturedOutput;
let table = "";
let tables = 0;

beforeAll(async () => {
  ecr = await startEcrStandIn();
  // Records STS requests on their way to moto (nothing fails: the pattern matches no target).
  sts = await startFaultProxy(motoUrl, /^never$/, STS_ACCESS_DENIED);
  Object.assign(process.env, localAwsEnv({ records: motoUrl, sts: sts.url, ecr: ecr.url }));
  dynamo = new DynamoDBClient({
    endpoint: motoUrl,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIAWEBHOOKTESTKEY01", secretAccessKey: "x" },
  });
  const record = (clusterId: string, sha256: string, extra: Record<string, unknown>) =>
    putClusterRecord(motoUrl, {
      clusterId,
      kubeconfig: "apiVersion: v1\nkind: Config\n",
      webhookTokenSha256: [sha256],
      ...extra,
    });
  await Promise.all([
    record("team-a", tokens.teamA.sha256, { registries: [A] }),
    record("team-b", tokens.teamB.sha256, { registries: [B] }),
    record("team-a-too", tokens.teamAToo.sha256, { registries: [A] }),
    record("team-a-narrow", tokens.teamANarrow.sha256, {
      registries: [A],
      repositories: TEAM_A_REPOSITORIES,
    }),
    record("two-regions", tokens.twoRegions.sha256, { registries: [A, A_WEST] }),
  ]);
});

afterAll(async () => {
  await ecr.stop();
  await sts.stop();
  restoreEnv(savedEnv);
});

beforeEach(async () => {
  // A table of its own per test (tokens shared by policy would cross tests), with the broker's key.
  table = `token-scoping-${++tables}`;
  await createTokenTable(dynamo, table);
  await new DynamoBrokerKeyStore(table, dynamo).write(
    { ...BROKER_KEY, storedAtMs: Date.now() },
    AbortSignal.timeout(5000),
  );
  ecr.reset();
  sts.bodies.length = 0;
  sts.signers.length = 0;
  output = captureOutput();
});

afterEach(() => {
  output.restore();
});

/** One execution environment, wired as the stack wires it: the token table and the broker user. */
function environment(now: () => number = Date.now, extra: Record<string, string> = {}): Webhook {
  return createWebhookFromEnv(
    {
      ...process.env,
      ECR_ANYWHERE_TOKEN_TABLE: table,
      ECR_ANYWHERE_BROKER_USER: "ecr-anywhere-token-broker",
      ...extra,
    },
    { now, telemetry: createTelemetry("ecr-anywhere-webhook") },
  );
}

interface Written {
  readonly passwords: Record<string, string | undefined>;
  readonly lifetimeMs: number;
  readonly annotations: Record<string, string>;
}

async function admit(
  handler: Webhook,
  clusterId: string,
  token: string,
  registries?: string,
): Promise<Written> {
  const object = managedSecret(
    registries
      ? {
          metadata: {
            name: "ecr-pull",
            namespace: "apps",
            labels: { [names.managedLabel]: "true" },
            annotations: { [names.registriesAnnotation]: registries },
          },
        }
      : {},
  );
  const result = await handler(
    webhookEvent({ clusterId, token, body: admissionReview({ object }) }),
    { awsRequestId: "r" },
  );
  const response = (
    JSON.parse(String(result.body)) as {
      response: { allowed: boolean; patch?: string; status?: { message: string } };
    }
  ).response;
  expect(response.status?.message).toBeUndefined();
  expect(response.allowed).toBe(true);
  const stored = applied(object, response);
  const auths = decodeDockerConfig(stored.data?.[".dockerconfigjson"]).auths;
  const annotations = stored.metadata?.annotations ?? {};
  const times = secretTimes(annotations, names);
  return {
    passwords: Object.fromEntries(Object.entries(auths).map(([host, e]) => [host, e?.password])),
    lifetimeMs: (times.expiresAtMs ?? 0) - (times.updatedAtMs ?? 0),
    annotations,
  };
}

interface FederationCall {
  readonly name: string | null;
  readonly durationSeconds: string | null;
  readonly statements: { Action: unknown; Resource: unknown }[];
  readonly signer: string | undefined;
}

/** Every GetFederationToken the webhook sent to STS, with the key that signed it. */
function federationCalls(): FederationCall[] {
  return sts.bodies.flatMap((body, index) => {
    const form = new URLSearchParams(body);
    if (form.get("Action") !== "GetFederationToken") return [];
    const policy = JSON.parse(
      form.get("Policy") ?? "{}",
    ) as FederationCall["statements"] extends infer S ? { Statement: S } : never;
    return [
      {
        name: form.get("Name"),
        durationSeconds: form.get("DurationSeconds"),
        statements: policy.Statement,
        signer: sts.signers[index],
      },
    ];
  });
}

/** The session policy's statements for pulling from exactly `repositories`. */
function scopedTo(repositories: readonly string[]) {
  return [
    { Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
    { Effect: "Allow", Action: PULL, Resource: repositories },
  ];
}

describe("token scoping: federation through the token broker", () => {
  it("mints each cluster's token in its own federated session, whose policy names exactly its registry, for 36 h", async () => {
    const one = environment();
    const a = await admit(one, "team-a", tokens.teamA.token);
    const b = await admit(one, "team-b", tokens.teamB.token);

    const calls = federationCalls();
    expect(calls.map((call) => call.name).sort()).toEqual([
      "ecr-anywhere-team-a",
      "ecr-anywhere-team-b",
    ]);
    const byName = (name: string) => calls.find((call) => call.name === name);
    expect(byName("ecr-anywhere-team-a")?.statements).toEqual(
      scopedTo(["arn:aws:ecr:us-east-1:111111111111:repository/*"]),
    );
    expect(byName("ecr-anywhere-team-b")?.statements).toEqual(
      scopedTo(["arn:aws:ecr:us-east-1:222222222222:repository/*"]),
    );
    for (const call of calls) {
      expect(call.durationSeconds).toBe("129600");
      // Signed with the broker's key from the token table, not the function's own credentials.
      expect(call.signer).toBe(BROKER_KEY.accessKeyId);
    }
    // ECR saw the federated sessions' credentials, never the function's or the broker's key.
    expect(ecr.calls).toHaveLength(2);
    for (const call of ecr.calls) {
      expect(call.accessKeyId).toBe(MOTO_FEDERATED_KEY);
      expect(call.sessionToken).toBeTruthy();
    }
    expect(a.passwords[A]).not.toBe(b.passwords[B]);
    // A 36 h session leaves every token its full 12 h.
    expect(a.lifetimeMs).toBe(12 * HOUR);
    expect(b.lifetimeMs).toBe(12 * HOUR);
    // Nothing secret in the output: no password, no key.
    const logged = output.text();
    for (const secret of [a.passwords[A], b.passwords[B], BROKER_KEY.secretAccessKey])
      expect(logged).not.toContain(secret);
  });

  it("never hands one of them the other's token, through an environment's cache or the shared table", async () => {
    const first = environment();
    const second = environment();
    const a = await admit(first, "team-a", tokens.teamA.token);
    const b = await admit(second, "team-b", tokens.teamB.token);
    expect(a.passwords[A]).not.toBe(b.passwords[B]);
    // A third environment finds each one's own token in the table; the first finds B's there too.
    const third = environment();
    expect((await admit(third, "team-b", tokens.teamB.token)).passwords[B]).toBe(b.passwords[B]);
    expect((await admit(third, "team-a", tokens.teamA.token)).passwords[A]).toBe(a.passwords[A]);
    expect((await admit(first, "team-b", tokens.teamB.token)).passwords[B]).toBe(b.passwords[B]);
    expect((await admit(first, "team-a", tokens.teamA.token)).passwords[A]).toBe(a.passwords[A]);
    expect(ecr.calls).toHaveLength(2);
  });

  it("shares a token between clusters whose records grant exactly the same, and scopes repositories without a role", async () => {
    const one = environment();
    const a = await admit(one, "team-a", tokens.teamA.token);
    const same = await admit(environment(), "team-a-too", tokens.teamAToo.token);
    expect(same.passwords[A]).toBe(a.passwords[A]);
    // Served from the table: no session was needed for it.
    expect(federationCalls().map((call) => call.name)).toEqual(["ecr-anywhere-team-a"]);

    const narrow = await admit(one, "team-a-narrow", tokens.teamANarrow.token);
    expect(narrow.passwords[A]).not.toBe(a.passwords[A]);
    const narrowCall = federationCalls().find((call) => call.name === "ecr-anywhere-team-a-narrow");
    expect(narrowCall?.statements).toEqual(scopedTo(TEAM_A_REPOSITORIES));
  });

  it("does not reuse a federated session once less than 12 h and the margin are left", async () => {
    const t0 = Date.now();
    let now = t0;
    ecr.now = () => now;
    // The stand-in caps tokens at the end of the session that minted them, as the test knows it.
    const sessionEnd = t0 + 36 * HOUR;
    ecr.sessionExpiresAtMs = (call) =>
      call.accessKeyId === MOTO_FEDERATED_KEY ? sessionEnd : undefined;
    const one = environment(() => now);
    const east = await admit(one, "two-regions", tokens.twoRegions.token, A);
    expect(federationCalls()).toHaveLength(1);
    expect(east.lifetimeMs).toBe(12 * HOUR);

    // 23 h 50 min in: the east token is past its reuse, the session still has 12 h 10 min.
    now = t0 + 23 * HOUR + 50 * 60_000;
    const late = await admit(one, "two-regions", tokens.twoRegions.token, A);
    expect(federationCalls()).toHaveLength(1);
    expect(ecr.calls).toHaveLength(2);
    expect(late.lifetimeMs).toBe(12 * HOUR);

    // 24 h in: 12 h left is less than a full token and its margin: a new session mints the west one.
    now = t0 + 24 * HOUR;
    await admit(one, "two-regions", tokens.twoRegions.token, A_WEST);
    expect(federationCalls()).toHaveLength(2);
    expect(federationCalls()[1]?.statements).toEqual(
      scopedTo([
        "arn:aws:ecr:eu-west-1:111111111111:repository/*",
        "arn:aws:ecr:us-east-1:111111111111:repository/*",
      ]),
    );
  });

  it("writes what the refresher plans with: a full 12 h Secret, refreshed 6 h before its end, never stale when written", async () => {
    const t0 = Date.now();
    let now = t0;
    ecr.now = () => now;
    const one = environment(() => now);
    await admit(one, "team-a", tokens.teamA.token);
    // The last mint the session allows (23 h 54 min in): still a full 12 h token.
    now = t0 + 23 * HOUR + 54 * 60_000;
    const written = await admit(one, "team-a", tokens.teamA.token);
    expect(federationCalls()).toHaveLength(1);
    expect(written.lifetimeMs).toBe(12 * HOUR);
    const times = secretTimes(written.annotations, names);
    const refreshBefore = 6 * HOUR; // the stack's default refreshBeforeHours
    const expiresAt = times.expiresAtMs ?? 0;
    // min(6 h, lifetime / 2) = 6 h: not stale when written, nor a second before; stale from then.
    expect(isStale(times, times.updatedAtMs ?? 0, refreshBefore)).toBe(false);
    expect(isStale(times, expiresAt - refreshBefore - 1000, refreshBefore)).toBe(false);
    expect(isStale(times, expiresAt - refreshBefore, refreshBefore)).toBe(true);
  });
});

describe("token scoping: role-session", () => {
  it("assumes the stack's pull role with the same session policy, per cluster: 1 h tokens", async () => {
    const pullRole = "arn:aws:iam::123456789012:role/ecr-anywhere-pull";
    const one = environment(Date.now, {
      ECR_ANYWHERE_TOKEN_SCOPING: "role-session",
      ECR_ANYWHERE_PULL_ROLE_ARN: pullRole,
    });
    const a = await admit(one, "team-a", tokens.teamA.token);
    const b = await admit(one, "team-b", tokens.teamB.token);
    expect(federationCalls()).toEqual([]);
    const assumed = sts.bodies
      .map((body) => new URLSearchParams(body))
      .filter((form) => form.get("Action") === "AssumeRole");
    expect(assumed.map((form) => [form.get("RoleArn"), form.get("RoleSessionName")])).toEqual([
      [pullRole, "ecr-anywhere-team-a"],
      [pullRole, "ecr-anywhere-team-b"],
    ]);
    expect(JSON.parse(assumed[0]?.get("Policy") ?? "{}").Statement).toEqual(
      scopedTo(["arn:aws:ecr:us-east-1:111111111111:repository/*"]),
    );
    expect(JSON.parse(assumed[1]?.get("Policy") ?? "{}").Statement).toEqual(
      scopedTo(["arn:aws:ecr:us-east-1:222222222222:repository/*"]),
    );
    expect(a.passwords[A]).not.toBe(b.passwords[B]);
    // Role chaining caps the session at 1 h, and the token with it.
    expect(a.lifetimeMs).toBeLessThanOrEqual(HOUR);
    expect(a.lifetimeMs).toBeGreaterThan(HOUR - 60_000);
  });
});
