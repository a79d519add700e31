/**
 * The functions' settings from the Lambda environment, validated once at cold start. Pure. The
 * variable names are defined here once, for the functions and for the infrastructure that sets
 * them.
 */
import * as v from "valibot";
import {
  type ContractNames,
  contractNames,
  DEFAULT_LABEL_PREFIX,
  DEFAULT_RECORDS_NAME,
  recordTables,
} from "./contract.ts";
import { type Partition, partitionOf } from "./registries.ts";
import { TOKEN_SCOPING_MODES, type TokenScoping } from "./token-scoping.ts";
import { parseWith } from "./validation.ts";

/** Every environment variable the functions read, by what it sets. */
export const ENV = {
  labelPrefix: "ECR_ANYWHERE_LABEL_PREFIX",
  webhookRecordTable: "ECR_ANYWHERE_WEBHOOK_RECORD_TABLE",
  refresherRecordTable: "ECR_ANYWHERE_REFRESHER_RECORD_TABLE",
  recordKeyArn: "ECR_ANYWHERE_RECORD_KEY_ARN",
  recordTtlSeconds: "ECR_ANYWHERE_RECORD_TTL_SECONDS",
  admissionBudgetMs: "ECR_ANYWHERE_ADMISSION_BUDGET_MS",
  maxBodyBytes: "ECR_ANYWHERE_MAX_BODY_BYTES",
  tokenTable: "ECR_ANYWHERE_TOKEN_TABLE",
  assumeRoleSeconds: "ECR_ANYWHERE_ASSUME_ROLE_SECONDS",
  tokenScoping: "ECR_ANYWHERE_TOKEN_SCOPING",
  brokerUser: "ECR_ANYWHERE_BROKER_USER",
  pullRoleArn: "ECR_ANYWHERE_PULL_ROLE_ARN",
  pullThroughCache: "ECR_ANYWHERE_PULL_THROUGH_CACHE",
  refreshBeforeSeconds: "ECR_ANYWHERE_REFRESH_BEFORE_SECONDS",
  clusterConcurrency: "ECR_ANYWHERE_CLUSTER_CONCURRENCY",
  markConcurrency: "ECR_ANYWHERE_MARK_CONCURRENCY",
  checkMarkConcurrency: "ECR_ANYWHERE_CHECK_MARK_CONCURRENCY",
  markAttempts: "ECR_ANYWHERE_MARK_ATTEMPTS",
  clusterDeadlineSeconds: "ECR_ANYWHERE_CLUSTER_DEADLINE_SECONDS",
  refreshMode: "ECR_ANYWHERE_REFRESH_MODE",
  fanoutQueueUrl: "ECR_ANYWHERE_FANOUT_QUEUE_URL",
  allowLocalApiServers: "ECR_ANYWHERE_ALLOW_LOCAL_API_SERVERS",
  metricsInstance: "ECR_ANYWHERE_METRICS_INSTANCE",
} as const;

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

const DEFAULT_TABLES = recordTables(DEFAULT_RECORDS_NAME);
const tableName = (fallback: string) =>
  v.optional(
    v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{3,255}$/, "a DynamoDB table name")),
    fallback,
  );

/**
 * A second instance in one account and region (another records name) adds this as the metrics'
 * `instance` dimension, so its alarms do not count the first one's fleet. Unset: `service` only.
 */
const metricsInstance = v.optional(
  v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,200}$/, "a records name")),
);

const WebhookEnvSchema = v.object({
  [ENV.labelPrefix]: v.optional(v.string(), DEFAULT_LABEL_PREFIX),
  [ENV.metricsInstance]: metricsInstance,
  [ENV.webhookRecordTable]: tableName(DEFAULT_TABLES.webhook),
  [ENV.recordTtlSeconds]: positiveInteger(60, 3600),
  [ENV.admissionBudgetMs]: positiveInteger(8000, 29_000),
  [ENV.maxBodyBytes]: positiveInteger(4 * 1024 * 1024, 6 * 1024 * 1024),
  [ENV.tokenTable]: v.optional(v.pipe(v.string(), v.nonEmpty())),
  [ENV.assumeRoleSeconds]: v.optional(
    v.pipe(v.string(), v.regex(/^\d+$/), v.transform(Number), v.minValue(900), v.maxValue(43_200)),
    "3600",
  ),
  [ENV.tokenScoping]: v.optional(v.picklist(TOKEN_SCOPING_MODES), "federation"),
  // Set by the stack from the user and role it creates; STS refuses a wrong one by name.
  [ENV.brokerUser]: v.optional(v.pipe(v.string(), v.nonEmpty())),
  [ENV.pullRoleArn]: v.optional(v.pipe(v.string(), v.nonEmpty())),
  [ENV.pullThroughCache]: v.optional(v.picklist(["true", "false"]), "false"),
});

/**
 * Built when asked, not at import: the webhook's bundle imports this module too, and a schema made
 * at the top level would stay in it unused.
 */
const refresherEnvSchema = () =>
  v.object({
    [ENV.labelPrefix]: v.optional(v.string(), DEFAULT_LABEL_PREFIX),
    [ENV.metricsInstance]: metricsInstance,
    [ENV.refresherRecordTable]: tableName(DEFAULT_TABLES.refresher),
    [ENV.recordKeyArn]: v.optional(
      v.pipe(
        v.string(),
        v.regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/\S+$/, "a KMS key ARN"),
      ),
    ),
    [ENV.refreshBeforeSeconds]: positiveInteger(6 * 3600, 11 * 3600),
    [ENV.clusterConcurrency]: positiveInteger(5, 50),
    [ENV.markConcurrency]: positiveInteger(10, 500),
    // 0: the one-cluster check marks nothing (the stack's budget had no slot to spare for it).
    [ENV.checkMarkConcurrency]: v.optional(
      v.pipe(v.string(), v.regex(/^\d+$/, "a whole number"), v.transform(Number), v.maxValue(500)),
      "1",
    ),
    [ENV.markAttempts]: positiveInteger(4, 10),
    [ENV.clusterDeadlineSeconds]: positiveInteger(120, 900),
    [ENV.refreshMode]: v.optional(v.picklist(["inline", "fanout"]), "inline"),
    [ENV.fanoutQueueUrl]: v.optional(v.pipe(v.string(), v.url())),
    [ENV.allowLocalApiServers]: v.optional(v.picklist(["true", "false"]), "false"),
  });

export interface RefresherConfig {
  /** The metrics' `instance` dimension, for a second instance in the account; none: `service` only. */
  readonly metricsInstance: string | undefined;
  /**
   * Accept kubeconfig servers on loopback or link-local addresses: only for local test beds. From
   * Lambda such an address is the function itself (its runtime API) or AWS's metadata service.
   */
  readonly allowLocalApiServers: boolean;
  readonly names: ContractNames;
  /** Its own table of cluster records (`<records>-refresher`): it never reads the webhook's. */
  readonly refresherRecordTable: string;
  /**
   * The record key: renewed kubeconfigs are sealed under it, and sealed ones are opened only with
   * it. Unset (local runs), a renewed kubeconfig is sealed under the key that sealed the old one.
   */
  readonly recordKeyArn: string | undefined;
  /** The configured `refreshBefore` of the staleness rule. */
  readonly refreshBeforeMs: number;
  /** Clusters visited at once (inline mode). */
  readonly clusterConcurrency: number;
  /**
   * Marks in flight at once in a scheduled invocation, across all its clusters: each is a
   * synchronous webhook call, so this is the most of the webhook's concurrency this invocation
   * takes from the users' own writes (the scheduled run's share of the stack's
   * refresherMarkConcurrency, split among fan-out workers; `markSplit`).
   */
  readonly markConcurrency: number;
  /**
   * Marks in flight in a one-cluster invocation (`{"clusterId": ...}`, onboard's check): the
   * stack's static share of the budget beside the scheduled run's (functions/core/concurrency.ts,
   * `markSplit`); 0 marks nothing.
   */
  readonly checkMarkConcurrency: number;
  /** Tries of a mark that failed for a transient reason (a throttled webhook or ECR). */
  readonly markAttempts: number;
  /** The most one cluster may take; well inside the Lambda timeout. */
  readonly clusterDeadlineMs: number;
  /** `inline` visits every cluster in this invocation; `fanout` sends one SQS message per cluster. */
  readonly mode: "inline" | "fanout";
  readonly fanoutQueueUrl: string | undefined;
}

export function refresherConfigFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): RefresherConfig {
  const settings = settingsFrom(refresherEnvSchema(), env, "refresher");
  if (settings[ENV.refreshMode] === "fanout" && !settings[ENV.fanoutQueueUrl]) {
    throw new Error(
      `invalid refresher configuration: ${ENV.refreshMode}=fanout needs ${ENV.fanoutQueueUrl}`,
    );
  }
  return {
    names: contractNames(settings[ENV.labelPrefix]),
    refresherRecordTable: settings[ENV.refresherRecordTable],
    recordKeyArn: settings[ENV.recordKeyArn],
    refreshBeforeMs: settings[ENV.refreshBeforeSeconds] * 1000,
    clusterConcurrency: settings[ENV.clusterConcurrency],
    markConcurrency: settings[ENV.markConcurrency],
    checkMarkConcurrency: settings[ENV.checkMarkConcurrency],
    markAttempts: settings[ENV.markAttempts],
    clusterDeadlineMs: settings[ENV.clusterDeadlineSeconds] * 1000,
    mode: settings[ENV.refreshMode],
    fanoutQueueUrl: settings[ENV.fanoutQueueUrl],
    allowLocalApiServers: settings[ENV.allowLocalApiServers] === "true",
    metricsInstance: settings[ENV.metricsInstance],
  };
}

export interface WebhookConfig {
  /** The metrics' `instance` dimension, for a second instance in the account; none: `service` only. */
  readonly metricsInstance: string | undefined;
  readonly names: ContractNames;
  /** Its table of cluster records (`<records>-webhook`): it never reads the refresher's. */
  readonly webhookRecordTable: string;
  /** How long a cluster record is cached: the longest a revoked cluster keeps working. */
  readonly recordTtlMs: number;
  /** Time from request to answer, inside the API server's 10 s webhook timeout. */
  readonly admissionBudgetMs: number;
  readonly maxBodyBytes: number;
  readonly assumeRoleDurationSeconds: number;
  /** DynamoDB table of tokens shared across execution environments; none: each mints its own. */
  readonly tokenTable: string | undefined;
  /** From AWS_REGION (Lambda sets it): records naming registries of another partition are invalid. */
  readonly partition: Partition | undefined;
  /** How clusters without a role of their own are scoped (docs/contract.md, "Token scoping"). */
  readonly tokenScoping: TokenScoping;
  /**
   * Federation: the broker user whose key the token table holds. Undefined: the function's own
   * credentials federate (local runs with an IAM user's keys; on Lambda, role credentials cannot,
   * so nothing is minted unscoped).
   */
  readonly brokerUser: string | undefined;
  /** The stack's pullThroughCache setting, which records that do not narrow inherit. */
  readonly pullThroughCache: boolean;
}

export function webhookConfigFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): WebhookConfig {
  const settings = settingsFrom(WebhookEnvSchema, env, "webhook");
  const brokerUser = settings[ENV.brokerUser];
  return {
    names: contractNames(settings[ENV.labelPrefix]),
    webhookRecordTable: settings[ENV.webhookRecordTable],
    recordTtlMs: settings[ENV.recordTtlSeconds] * 1000,
    admissionBudgetMs: settings[ENV.admissionBudgetMs],
    maxBodyBytes: settings[ENV.maxBodyBytes],
    assumeRoleDurationSeconds: settings[ENV.assumeRoleSeconds],
    tokenTable: settings[ENV.tokenTable],
    partition: env.AWS_REGION ? partitionOf(env.AWS_REGION) : undefined,
    tokenScoping: tokenScopingFrom(settings),
    brokerUser,
    pullThroughCache: settings[ENV.pullThroughCache] === "true",
    metricsInstance: settings[ENV.metricsInstance],
  };
}

function tokenScopingFrom(settings: v.InferOutput<typeof WebhookEnvSchema>): TokenScoping {
  const pullRoleArn = settings[ENV.pullRoleArn];
  const brokerUser = settings[ENV.brokerUser];
  const role = settings[ENV.tokenScoping] === "role-session";
  // The broker's key is kept in the token table.
  const missing = role
    ? !pullRoleArn && ENV.pullRoleArn
    : brokerUser && !settings[ENV.tokenTable] && ENV.tokenTable;
  if (missing) throw new Error(`invalid webhook configuration: ${missing} is required`);
  return role && pullRoleArn
    ? { mode: "role-session", pullRoleArn }
    : { mode: "federation", broker: brokerUser ?? "self" };
}

export function settingsFrom<const TSchema extends v.GenericSchema>(
  schema: TSchema,
  env: Readonly<Record<string, string | undefined>>,
  fn: string,
): v.InferOutput<TSchema> {
  const parsed = parseWith(schema, env);
  if (!parsed.ok) throw new Error(`invalid ${fn} configuration: ${parsed.error}`);
  return parsed.value;
}
