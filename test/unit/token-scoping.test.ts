/**
 * Who mints a cluster's token, under which session policy (core/token-scoping.ts); how long a
 * session is reused (core/token-lifetime.ts); when the broker's key is rotated
 * (core/broker-key.ts); the sessions adapter reading the broker's key again when STS refuses it,
 * and waiting environments taking over a lease that ran out. Pure, except the last two, which run
 * against stubs of their ports.
 */
import type { ECRClient } from "@aws-sdk/client-ecr";
import type { STSClient } from "@aws-sdk/client-sts";
import { describe, expect, it } from "vitest";
import { EcrMinter } from "../../functions/adapters/ecr-minter.ts";
import { EcrPublicMinter } from "../../functions/adapters/ecr-public-minter.ts";
import { EcrTokenProvider } from "../../functions/adapters/ecr-tokens.ts";
import { StoredKeyBroker, TokenSessions } from "../../functions/adapters/token-sessions.ts";
import {
  type AccessKeyInfo,
  planRotation,
  type StoredBrokerKey,
  SUPERSEDED_KEY_GRACE_MS,
} from "../../functions/core/broker-key.ts";
import { webhookConfigFromEnv } from "../../functions/core/config.ts";
import { ECR } from "../../functions/core/ecr-kind.ts";
import { ECR_PUBLIC } from "../../functions/core/ecr-public-kind.ts";
import { REGISTRY_KINDS } from "../../functions/core/registries.ts";
import { credentialsReuseUntil } from "../../functions/core/token-lifetime.ts";
import {
  federatedUserName,
  type MintPlan,
  planMint,
  type TokenScoping,
} from "../../functions/core/token-scoping.ts";
import type { SharedToken, SharedTokenStore } from "../../functions/core/tokens.ts";

const A = "111111111111.dkr.ecr.us-east-1.amazonaws.com";
const A_FIPS = "111111111111.dkr.ecr-fips.us-east-1.amazonaws.com";
const A_DUAL = "111111111111.dkr-ecr.us-east-1.on.aws";
const B = "222222222222.dkr.ecr.us-east-1.amazonaws.com";
const PUBLIC = "public.ecr.aws";
const HOUR = 3600_000;
const DAY = 24 * HOUR;
const FEDERATION: TokenScoping = { mode: "federation", broker: "ecr-anywhere-token-broker" };

function plan(
  requester: Parameters<typeof planMint>[0],
  kind = ECR,
  scoping = FEDERATION,
  stackPullThroughCache = false,
): MintPlan {
  return planMint(requester, kind, REGISTRY_KINDS, scoping, stackPullThroughCache);
}

function statementsOf(mint: MintPlan): { Action: unknown; Resource: unknown }[] {
  if (mint.via === "own" || mint.policy === undefined) return [];
  return JSON.parse(mint.policy).Statement;
}

describe("planMint", () => {
  it("federates a cluster without a role under a policy of exactly its registries, once per repository set", () => {
    const mint = plan({ clusterId: "team-a", registries: [A, A_FIPS, A_DUAL, B] });
    expect(mint).toMatchObject({ via: "federation", name: "ecr-anywhere-team-a" });
    expect(statementsOf(mint)[1]?.Resource).toEqual([
      "arn:aws:ecr:us-east-1:111111111111:repository/*",
      "arn:aws:ecr:us-east-1:222222222222:repository/*",
    ]);
  });

  it("keys tokens by principal and policy: equal grants share, different grants never, sessions stay per cluster", () => {
    const a = plan({ clusterId: "team-a", registries: [A] });
    const aToo = plan({ clusterId: "team-a-too", registries: [A] });
    const b = plan({ clusterId: "team-b", registries: [B] });
    expect(a.identity).toBe(aToo.identity);
    expect(a.identity).not.toBe(b.identity);
    expect(a.via === "federation" && aToo.via === "federation" && a.sessionKey).not.toBe(
      aToo.via === "federation" && aToo.sessionKey,
    );
    // Another broker, or the pull role, is another principal.
    const other = plan({ clusterId: "team-a", registries: [A] }, ECR, {
      mode: "federation",
      broker: "someone-else",
    });
    expect(other.identity).not.toBe(a.identity);
  });

  it("cuts the federated user's name to STS's 32 characters", () => {
    const id = "a-cluster-id-that-is-longer-than-the-limit";
    expect(federatedUserName(id)).toBe("ecr-anywhere-a-cluster-id-that-i");
    expect(federatedUserName(id)).toHaveLength(32);
  });

  it("narrows to the record's repositories, and adds the import actions when the record or, unnarrowed, the stack opts in", () => {
    const repositories = ["arn:aws:ecr:us-east-1:111111111111:repository/team-a/*"];
    const narrowed = plan({ clusterId: "c", registries: [A], repositories });
    expect(statementsOf(narrowed)[1]?.Resource).toEqual(repositories);
    expect(statementsOf(narrowed)[1]?.Action).not.toContain("ecr:CreateRepository");
    const optedIn = plan({ clusterId: "c", registries: [A], repositories, pullThroughCache: true });
    expect(statementsOf(optedIn)[1]?.Action).toContain("ecr:BatchImportUpstreamImage");
    // Narrowed records decide for themselves; the others inherit the stack's setting.
    const stackOn = (requester: Parameters<typeof planMint>[0]) =>
      statementsOf(plan(requester, ECR, FEDERATION, true))[1]?.Action;
    expect(stackOn({ clusterId: "c", registries: [A] })).toContain("ecr:CreateRepository");
    expect(stackOn({ clusterId: "c", registries: [A], repositories })).not.toContain(
      "ecr:CreateRepository",
    );
  });

  it("mints ECR Public with the webhook's own credentials for a cluster without a role, and leaves it out of the federated policy", () => {
    const requester = { clusterId: "c", registries: [A, PUBLIC] };
    expect(plan(requester, ECR_PUBLIC)).toEqual({ via: "own", identity: "self" });
    expect(JSON.stringify(statementsOf(plan(requester)))).not.toContain("ecr-public");
  });

  it("assumes a cluster's own role with its whole record's policy, ECR Public included", () => {
    const requester = {
      clusterId: "c",
      registries: [A, PUBLIC],
      roleArn: "arn:aws:iam::123456789012:role/ecr-pull",
    };
    for (const kind of [ECR, ECR_PUBLIC]) {
      const mint = plan(requester, kind);
      expect(mint).toMatchObject({ via: "assume-role", roleArn: requester.roleArn });
      expect(statementsOf(mint).map((statement) => statement.Action)).toEqual([
        "ecr:GetAuthorizationToken",
        ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
        "ecr-public:GetAuthorizationToken",
        "sts:GetServiceBearerToken",
      ]);
    }
  });

  it("assumes the stack's pull role in role-session mode, per cluster session", () => {
    const pullRoleArn = "arn:aws:iam::123456789012:role/ecr-anywhere-pull";
    const mint = plan({ clusterId: "team-a", registries: [A] }, ECR, {
      mode: "role-session",
      pullRoleArn,
    });
    expect(mint).toMatchObject({
      via: "assume-role",
      roleArn: pullRoleArn,
      sessionName: "ecr-anywhere-team-a",
    });
  });
});

describe("credentialsReuseUntil", () => {
  const T0 = Date.UTC(2026, 11, 1);
  it("reuses a 36 h session while a token still gets 12 h and the margin, a 1 h session for half its life", () => {
    expect(credentialsReuseUntil(T0, T0 + 36 * HOUR)).toBe(T0 + 24 * HOUR - 5 * 60_000);
    expect(credentialsReuseUntil(T0, T0 + HOUR)).toBe(T0 + HOUR / 2);
    // Never with less than the minimum left.
    expect(credentialsReuseUntil(T0, T0 + 6 * 60_000)).toBe(T0 + 60_000);
  });
});

describe("planRotation", () => {
  const T0 = Date.UTC(2026, 11, 1);
  const key = (accessKeyId: string, createdAtMs: number): AccessKeyInfo => ({
    accessKeyId,
    createdAtMs,
  });

  it("creates the first key, and deletes keys no item ever handed out", () => {
    expect(planRotation({ keys: [], stored: undefined, nowMs: T0 })).toEqual([
      { action: "create", reason: "no key stored yet" },
    ]);
    expect(planRotation({ keys: [key("AKIASTRAY", T0)], stored: undefined, nowMs: T0 })).toEqual([
      { action: "delete", accessKeyId: "AKIASTRAY", reason: "never stored" },
      { action: "create", reason: "no key stored yet" },
    ]);
  });

  it("rotates after 30 days, keeps the replaced key through the grace, then deletes it", () => {
    const old = key("AKIAOLD", T0);
    const stored = { accessKeyId: "AKIAOLD", storedAtMs: T0 };
    expect(planRotation({ keys: [old], stored, nowMs: T0 + 29 * DAY })).toEqual([]);
    expect(planRotation({ keys: [old], stored, nowMs: T0 + 30 * DAY })).toEqual([
      { action: "create", reason: "the key is due for rotation" },
    ]);
    const replaced = { accessKeyId: "AKIANEW", storedAtMs: T0 + 30 * DAY };
    const both = [old, key("AKIANEW", T0 + 30 * DAY)];
    expect(
      planRotation({
        keys: both,
        stored: replaced,
        nowMs: T0 + 30 * DAY + SUPERSEDED_KEY_GRACE_MS,
      }),
    ).toEqual([]);
    expect(
      planRotation({
        keys: both,
        stored: replaced,
        nowMs: T0 + 30 * DAY + SUPERSEDED_KEY_GRACE_MS + 1,
      }),
    ).toEqual([{ action: "delete", accessKeyId: "AKIAOLD", reason: "replaced" }]);
  });

  it("deletes a newer key a failed run left unstored at once, and waits instead of exceeding two keys", () => {
    const current = key("AKIACUR", T0);
    const stored = { accessKeyId: "AKIACUR", storedAtMs: T0 };
    expect(
      planRotation({ keys: [current, key("AKIAORPHAN", T0 + 1000)], stored, nowMs: T0 + DAY }),
    ).toEqual([{ action: "delete", accessKeyId: "AKIAORPHAN", reason: "never stored" }]);
    // Due, but the replaced key is still in its grace: no third key.
    const recent = { accessKeyId: "AKIACUR", storedAtMs: T0 + 29 * DAY + 1 };
    expect(
      planRotation({
        keys: [key("AKIAPREV", T0 - DAY), current],
        stored: recent,
        nowMs: T0 + 29 * DAY + 2,
        maxAgeMs: 1,
      }),
    ).toEqual([]);
  });

  it("makes a working key at once when the stored one is gone, freeing a slot if it must", () => {
    const stored = { accessKeyId: "AKIAGONE", storedAtMs: T0 };
    expect(
      planRotation({ keys: [key("AKIAX", T0 - DAY), key("AKIAY", T0 - 1)], stored, nowMs: T0 + 1 }),
    ).toEqual([
      { action: "delete", accessKeyId: "AKIAX", reason: "no usable key is stored" },
      { action: "create", reason: "the stored key no longer exists" },
    ]);
  });
});

describe("the webhook's scoping settings", () => {
  it("defaults to federation with its own credentials, needs the table for a broker user, and the pull role for role-session", () => {
    expect(webhookConfigFromEnv({}).tokenScoping).toEqual({ mode: "federation", broker: "self" });
    expect(
      webhookConfigFromEnv({
        ECR_ANYWHERE_BROKER_USER: "broker",
        ECR_ANYWHERE_TOKEN_TABLE: "t",
      }).tokenScoping,
    ).toEqual({ mode: "federation", broker: "broker" });
    expect(() => webhookConfigFromEnv({ ECR_ANYWHERE_BROKER_USER: "broker" })).toThrow(
      /ECR_ANYWHERE_TOKEN_TABLE is required/,
    );
    expect(() => webhookConfigFromEnv({ ECR_ANYWHERE_TOKEN_SCOPING: "role-session" })).toThrow(
      /ECR_ANYWHERE_PULL_ROLE_ARN is required/,
    );
    expect(() => webhookConfigFromEnv({ ECR_ANYWHERE_TOKEN_SCOPING: "none" })).toThrow(
      /ECR_ANYWHERE_TOKEN_SCOPING/,
    );
  });
});

describe("the broker's key in the webhook", () => {
  it("reads the key again and retries once when STS refuses the one it holds (it was replaced)", async () => {
    const keys: StoredBrokerKey[] = [
      { accessKeyId: "AKIAOLDKEY", secretAccessKey: "old", storedAtMs: 0 },
      { accessKeyId: "AKIANEWKEY", secretAccessKey: "new", storedAtMs: 1 },
    ];
    let reads = 0;
    const broker = new StoredKeyBroker({ read: async () => keys[Math.min(reads++, 1)] }, Date.now);
    const used: string[] = [];
    const stub = async (accessKeyId: string) => {
      used.push(accessKeyId);
      if (accessKeyId === "AKIAOLDKEY")
        throw Object.assign(new Error("The security token included in the request is invalid."), {
          name: "InvalidClientTokenId",
        });
      return {
        Credentials: {
          AccessKeyId: "ASIAFEDERATED",
          SecretAccessKey: "s",
          SessionToken: "t",
          Expiration: new Date(Date.now() + 36 * HOUR),
        },
      };
    };
    // The real client is built per key; its send is replaced by the stub for that key.
    const clientFor = broker.client.bind(broker);
    broker.client = async (signal) => {
      const client = await clientFor(signal);
      const { accessKeyId } = await client.config.credentials();
      return { send: () => stub(accessKeyId) } as unknown as STSClient;
    };
    const sessions = new TokenSessions({ sts: {} as STSClient, broker, now: Date.now });
    const credentials = await sessions.credentialsFor(
      { via: "federation", name: "ecr-anywhere-c", policy: "{}", identity: "i", sessionKey: "k" },
      AbortSignal.timeout(5000),
    );
    expect(credentials?.accessKeyId).toBe("ASIAFEDERATED");
    expect(used).toEqual(["AKIAOLDKEY", "AKIANEWKEY"]);
    expect(reads).toBe(2);
  });
});

describe("environments waiting for another's mint", () => {
  it("take over a lease that ran out one at a time: one mints, the others get its token", async () => {
    // The shared table's rules (adapters/shared-tokens.ts), in memory.
    const items = new Map<string, { shared?: SharedToken; leaseUntilMs?: number }>();
    const store: SharedTokenStore = {
      read: async (key, nowMs) => {
        const shared = items.get(key)?.shared;
        return shared && shared.reuseUntilMs > nowMs ? shared : undefined;
      },
      claim: async (key, nowMs, leaseMs) => {
        const item = items.get(key) ?? {};
        if ((item.leaseUntilMs ?? 0) >= nowMs || (item.shared?.reuseUntilMs ?? 0) > nowMs)
          return false;
        items.set(key, { ...item, leaseUntilMs: nowMs + leaseMs });
        return true;
      },
      write: async (key, shared) => {
        items.set(key, { shared });
      },
    };
    let mints = 0;
    const ecr = () =>
      ({
        send: async () => {
          mints++;
          await new Promise((resolve) => setTimeout(resolve, 50));
          return {
            authorizationData: [
              {
                authorizationToken: Buffer.from(`AWS:password-${mints}`).toString("base64"),
                expiresAt: new Date(Date.now() + 12 * HOUR),
              },
            ],
          };
        },
        destroy: () => undefined,
      }) as unknown as ECRClient;
    const sts = {
      send: async () => ({
        Credentials: {
          AccessKeyId: "ASIAFEDERATED",
          SecretAccessKey: "s",
          SessionToken: "t",
          Expiration: new Date(Date.now() + 36 * HOUR),
        },
      }),
    } as unknown as STSClient;
    const environment = () =>
      new EcrTokenProvider({
        sts,
        now: Date.now,
        shared: store,
        minters: [new EcrMinter(ecr), new EcrPublicMinter()],
      });
    const requester = { clusterId: "c", registries: [A] };
    const endpoint = { kind: "ecr", region: "us-east-1", fips: false };
    // An environment claimed the lease and died before writing its token.
    const first = await environment().tokenFor(requester, endpoint, AbortSignal.timeout(8000));
    const key = [...items.keys()][0] ?? "";
    items.set(key, { leaseUntilMs: Date.now() + 3000 });
    const before = mints;
    const waiters = await Promise.all(
      Array.from({ length: 5 }, () =>
        environment().tokenFor(requester, endpoint, AbortSignal.timeout(8000)),
      ),
    );
    expect(mints - before).toBe(1);
    expect(new Set(waiters.map((answer) => answer.token.password)).size).toBe(1);
    expect(waiters[0]?.token.password).not.toBe(first.token.password);
  }, 15_000);
});
