/** Webhook settings from the Lambda environment, validated once at cold start. Pure. */
import * as v from "valibot";
import {
  type ContractNames,
  contractNames,
  DEFAULT_CLUSTER_RECORD_PREFIX,
  DEFAULT_LABEL_PREFIX,
} from "./contract.ts";
import { parseWith } from "./validation.ts";

const positiveInteger = (fallback: number, max: number) =>
  v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d+$/, "a whole number"),
      v.transform(Number),
      v.minValue(1),
      v.maxValue(max),
    ),
    String(fallback),
  );

const WebhookEnvSchema = v.object({
  ECR_ANYWHERE_LABEL_PREFIX: v.optional(v.string(), DEFAULT_LABEL_PREFIX),
  ECR_ANYWHERE_CLUSTER_RECORD_PREFIX: v.optional(
    v.pipe(v.string(), v.regex(/^[\w/+=.@-]+\/$/, "a Secrets Manager name prefix ending in /")),
    DEFAULT_CLUSTER_RECORD_PREFIX,
  ),
  ECR_ANYWHERE_RECORD_TTL_SECONDS: positiveInteger(60, 3600),
  ECR_ANYWHERE_ADMISSION_BUDGET_MS: positiveInteger(8000, 29_000),
  ECR_ANYWHERE_MAX_BODY_BYTES: positiveInteger(4 * 1024 * 1024, 6 * 1024 * 1024),
  ECR_ANYWHERE_ASSUME_ROLE_SECONDS: v.optional(
    v.pipe(v.string(), v.regex(/^\d+$/), v.transform(Number), v.minValue(900), v.maxValue(43_200)),
    "3600",
  ),
});

export interface WebhookConfig {
  readonly names: ContractNames;
  readonly clusterRecordPrefix: string;
  /** How long a cluster record is cached: the longest a revoked cluster keeps working. */
  readonly recordTtlMs: number;
  /** Time from request to answer, inside the API server's 10 s webhook timeout. */
  readonly admissionBudgetMs: number;
  readonly maxBodyBytes: number;
  readonly assumeRoleDurationSeconds: number;
}

export function webhookConfigFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): WebhookConfig {
  const parsed = parseWith(WebhookEnvSchema, env);
  if (!parsed.ok) throw new Error(`invalid webhook configuration: ${parsed.error}`);
  const settings = parsed.value;
  return {
    names: contractNames(settings.ECR_ANYWHERE_LABEL_PREFIX),
    clusterRecordPrefix: settings.ECR_ANYWHERE_CLUSTER_RECORD_PREFIX,
    recordTtlMs: settings.ECR_ANYWHERE_RECORD_TTL_SECONDS * 1000,
    admissionBudgetMs: settings.ECR_ANYWHERE_ADMISSION_BUDGET_MS,
    maxBodyBytes: settings.ECR_ANYWHERE_MAX_BODY_BYTES,
    assumeRoleDurationSeconds: settings.ECR_ANYWHERE_ASSUME_ROLE_SECONDS,
  };
}
