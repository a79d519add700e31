import { describe, expect, it } from "vitest";
import { refresherConfigFromEnv, webhookConfigFromEnv } from "../../functions/core/config.ts";
import { contractNames } from "../../functions/core/contract.ts";
import { ECR } from "../../functions/core/ecr-kind.ts";
import { ECR_PUBLIC } from "../../functions/core/ecr-public-kind.ts";
import { parseEcrHost, type RegistryKind } from "../../functions/core/registries.ts";
import { sessionPolicyFor } from "../../functions/core/session-policy.ts";
import { earliest, parseRfc3339, toRfc3339 } from "../../functions/core/time.ts";
import { reuseUntil, tokenExpiry } from "../../functions/core/token-lifetime.ts";
import { count, createTelemetry } from "../../functions/telemetry.ts";
import { captureOutput } from "../support/output.ts";

describe("webhookConfigFromEnv", () => {
  it("has defaults that fit the API server's 10 s webhook timeout", () => {
    const config = webhookConfigFromEnv({});
    expect(config).toMatchObject({
      webhookRecordTable: "ecr-anywhere-clusters-webhook",
      recordTtlMs: 60_000,
      admissionBudgetMs: 8000,
      maxBodyBytes: 4 * 1024 * 1024,
      assumeRoleDurationSeconds: 3600,
    });
    expect(config.names.managedLabel).toBe("ecr-anywhere.centml.ai/managed");
  });

  it("takes a custom prefix and rejects bad values by name", () => {
    expect(
      webhookConfigFromEnv({ ECR_ANYWHERE_LABEL_PREFIX: "ecr.example.com" }).names
        .expiresAtAnnotation,
    ).toBe("ecr.example.com/expires_at");
    expect(() => webhookConfigFromEnv({ ECR_ANYWHERE_ADMISSION_BUDGET_MS: "soon" })).toThrow(
      /ECR_ANYWHERE_ADMISSION_BUDGET_MS/,
    );
    expect(() => webhookConfigFromEnv({ ECR_ANYWHERE_ADMISSION_BUDGET_MS: "0" })).toThrow(
      /ECR_ANYWHERE_ADMISSION_BUDGET_MS/,
    );
    expect(() => webhookConfigFromEnv({ ECR_ANYWHERE_LABEL_PREFIX: "Not A Domain" })).toThrow(
      /DNS subdomain/,
    );
    expect(() => webhookConfigFromEnv({ ECR_ANYWHERE_WEBHOOK_RECORD_TABLE: "a b" })).toThrow(
      /ECR_ANYWHERE_WEBHOOK_RECORD_TABLE: expected/,
    );
  });
});

describe("refresherConfigFromEnv", () => {
  it("reads its own record table and the record key, nothing of the webhook's", () => {
    expect(refresherConfigFromEnv({})).toMatchObject({
      refresherRecordTable: "ecr-anywhere-clusters-refresher",
      recordKeyArn: undefined,
    });
    const key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    expect(
      refresherConfigFromEnv({
        ECR_ANYWHERE_REFRESHER_RECORD_TABLE: "team-a-refresher",
        ECR_ANYWHERE_RECORD_KEY_ARN: key,
      }),
    ).toMatchObject({ refresherRecordTable: "team-a-refresher", recordKeyArn: key });
    expect(() => refresherConfigFromEnv({ ECR_ANYWHERE_RECORD_KEY_ARN: "alias/x" })).toThrow(
      /ECR_ANYWHERE_RECORD_KEY_ARN: expected/,
    );
  });
});

describe("a second instance's metrics", () => {
  it("carry its records name as the instance dimension beside service; the default instance's do not", () => {
    const output = captureOutput();
    try {
      for (const env of [{}, { ECR_ANYWHERE_METRICS_INSTANCE: "staging-clusters" }]) {
        const config = webhookConfigFromEnv(env);
        expect(refresherConfigFromEnv(env).metricsInstance).toBe(config.metricsInstance);
        const { metrics } = createTelemetry("ecr-anywhere-webhook", config.metricsInstance);
        count(metrics, "Admissions");
        metrics.publishStoredMetrics();
      }
    } finally {
      output.restore();
    }
    const documents = output.json().filter((document) => document._aws !== undefined);
    const dimensions = documents.map((document) => ({
      dimensions: (document._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] })
        .CloudWatchMetrics[0]?.Dimensions,
      instance: document.instance,
    }));
    expect(dimensions).toEqual([
      { dimensions: [["service"]], instance: undefined },
      { dimensions: [["service", "instance"]], instance: "staging-clusters" },
    ]);
    expect(() => webhookConfigFromEnv({ ECR_ANYWHERE_METRICS_INSTANCE: "a b" })).toThrow(
      /ECR_ANYWHERE_METRICS_INSTANCE/,
    );
  });
});

describe("contract names", () => {
  it("matches the original ECR Anywhere release", () => {
    expect(contractNames()).toEqual({
      labelPrefix: "ecr-anywhere.centml.ai",
      namespaceLabel: "ecr-anywhere.centml.ai/namespace",
      managedLabel: "ecr-anywhere.centml.ai/managed",
      expiresAtAnnotation: "ecr-anywhere.centml.ai/expires_at",
      updatedAtAnnotation: "ecr-anywhere.centml.ai/updated_at",
      markedForUpdateAtAnnotation: "ecr-anywhere.centml.ai/marked_for_update_at",
      registriesAnnotation: "ecr-anywhere.centml.ai/registries",
    });
  });
});

describe("time", () => {
  it("writes RFC 3339 UTC to the second, rounding down", () => {
    expect(toRfc3339(Date.UTC(2026, 10, 22, 11, 9, 13, 999))).toBe("2026-11-22T11:09:13Z");
  });

  it("reads RFC 3339 with offsets and fractions, and nothing else", () => {
    expect(parseRfc3339("2026-11-22T11:09:13Z")).toBe(Date.UTC(2026, 10, 22, 11, 9, 13));
    expect(parseRfc3339("2026-11-22T12:09:13.5+01:00")).toBe(
      Date.UTC(2026, 10, 22, 11, 9, 13, 500),
    );
    for (const bad of [
      undefined,
      "",
      "yesterday",
      "2026-11-22",
      "1732273753",
      "2026-13-40T99:99:99Z",
    ]) {
      expect(parseRfc3339(bad)).toBeUndefined();
    }
  });

  it("picks the earliest expiry", () => {
    expect(earliest([3, 1, 2])).toBe(1);
    expect(() => earliest([])).toThrow(RangeError);
  });
});

/** The session policy of a record narrowed to `repositories`, beside a registry of each of `kinds`. */
function narrowedPolicy(
  repositories: readonly string[] | undefined,
  pullThroughCache = false,
  kinds: readonly RegistryKind[] = [],
): string | undefined {
  const publicRegistry = parseEcrHost("public.ecr.aws");
  const registries = kinds.includes(ECR_PUBLIC) && publicRegistry ? [publicRegistry] : [];
  return sessionPolicyFor({ registries, repositories, pullThroughCache }, [ECR, ...kinds]);
}

describe("sessionPolicyFor", () => {
  it("allows minting tokens and pulling only from the listed repositories", () => {
    const repositories = [
      "arn:aws:ecr:us-east-1:123456789012:repository/team-b/*",
      "arn:aws:ecr:us-east-1:123456789012:repository/team-a/*",
    ];
    expect(JSON.parse(narrowedPolicy(repositories) ?? "")).toEqual({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
        {
          Effect: "Allow",
          Action: [
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchCheckLayerAvailability",
          ],
          Resource: [...repositories].sort(),
        },
      ],
    });
    expect(narrowedPolicy(undefined)).toBeUndefined();
  });

  it("adds the pull-through cache import actions only when the record opts in", () => {
    const repositories = ["arn:aws:ecr:us-east-1:123456789012:repository/ecr-public/*"];
    const actions = (policy: string | undefined) =>
      (JSON.parse(policy ?? "{}") as { Statement: { Action: string | string[] }[] }).Statement[1]
        ?.Action;
    expect(actions(narrowedPolicy(repositories))).not.toContain("ecr:BatchImportUpstreamImage");
    expect(actions(narrowedPolicy(repositories, true))).toEqual([
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchImportUpstreamImage",
      "ecr:CreateRepository",
    ]);
  });

  it("adds exactly ECR Public's token actions, the bearer token limited to ECR Public, when the record pulls from it", () => {
    const repositories = ["arn:aws:ecr:us-east-1:123456789012:repository/team-a/*"];
    const statements = (policy: string | undefined) =>
      (JSON.parse(policy ?? "{}") as { Statement: unknown[] }).Statement;
    expect(statements(narrowedPolicy(repositories))).toHaveLength(2);
    expect(statements(narrowedPolicy(repositories, false, [ECR_PUBLIC])).slice(2)).toEqual([
      { Effect: "Allow", Action: "ecr-public:GetAuthorizationToken", Resource: "*" },
      {
        Effect: "Allow",
        Action: "sts:GetServiceBearerToken",
        Resource: "*",
        Condition: { StringEquals: { "sts:AWSServiceName": "ecr-public.amazonaws.com" } },
      },
    ]);
  });

  it("refuses a policy longer than STS accepts, suggesting wildcards", () => {
    const many = Array.from(
      { length: 40 },
      (_, i) => `arn:aws:ecr:us-east-1:123456789012:repository/team-${i}/service`,
    );
    expect(() => narrowedPolicy(many)).toThrow(/STS allows 2048: use wildcards/);
  });
});

describe("token lifetime", () => {
  const HOUR = 3600_000;
  const T0 = Date.UTC(2026, 10, 22, 11);

  it("records the earliest of ECR's expiry and the minting session's", () => {
    expect(tokenExpiry(T0 + 12 * HOUR)).toBe(T0 + 12 * HOUR);
    expect(tokenExpiry(T0 + 12 * HOUR, T0 + HOUR)).toBe(T0 + HOUR);
    expect(tokenExpiry(T0 + HOUR, T0 + 12 * HOUR)).toBe(T0 + HOUR);
  });

  it("reuses a cached token only while half its life remains, and never below the minimum", () => {
    expect(reuseUntil(T0, T0 + 12 * HOUR)).toBe(T0 + 6 * HOUR);
    expect(reuseUntil(T0, T0 + HOUR)).toBe(T0 + HOUR / 2);
    // A token fetched with 8 minutes left: half is 4 minutes, the 5-minute floor wins.
    expect(reuseUntil(T0, T0 + 8 * 60_000)).toBe(T0 + 3 * 60_000);
    expect(reuseUntil(T0, T0 + 4 * 60_000)).toBeLessThan(T0); // never served from cache
  });
});
