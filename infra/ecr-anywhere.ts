/**
 * The whole AWS side of ecr-anywhere as one construct, composed of constructs that each stand
 * alone: the cluster record tables, the webhook (function URL, shared token table, IAM), the
 * refresher (schedule, fan-out), and monitoring (alarms, dashboard). They share the record key.
 * The props are the only knobs; each construct validates its own.
 */
import { createHash } from "node:crypto";
import { Duration, Stack } from "aws-cdk-lib";
import type * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as kms from "aws-cdk-lib/aws-kms";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as sns from "aws-cdk-lib/aws-sns";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { markConcurrencyFor, maxMarkConcurrency } from "../functions/core/concurrency.ts";
import {
  contractNames,
  DEFAULT_LABEL_PREFIX,
  DEFAULT_RECORDS_NAME,
} from "../functions/core/contract.ts";
import { isRefresherNetworkMode, type RefresherNetworkMode } from "../functions/core/network.ts";
import type { TokenScopingMode } from "../functions/core/token-scoping.ts";
import { EcrAnywhereMonitoring } from "./constructs/monitoring.ts";
import { EcrAnywhereRefresherNetwork, type RefresherNetworkProps } from "./constructs/network.ts";
import { EcrAnywhereRecords } from "./constructs/records.ts";
import { EcrAnywhereRefresher } from "./constructs/refresher.ts";
import { throwIfInvalid } from "./constructs/shared.ts";
import { EcrAnywhereWebhook } from "./constructs/webhook.ts";

export interface EcrAnywhereProps {
  /**
   * ECR registry hosts (`<account>.dkr.ecr.<region>.amazonaws.com`) whose repositories the minted
   * tokens may pull from. Cluster records can only narrow this.
   * @default the registry of this stack's own account and region
   */
  readonly allowedRegistries?: readonly string[];
  /** IAM roles the webhook may assume for clusters whose record names a `roleArn`. @default none */
  readonly clusterRoleArns?: readonly string[];
  /** How often the refresher runs. @default 15 minutes */
  readonly refreshInterval?: Duration;
  /** Refresh a Secret this long before its credentials expire (capped at half their lifetime). @default 6 hours */
  readonly refreshBefore?: Duration;
  /**
   * The records name N: cluster records live in the DynamoDB tables `<N>-webhook` and
   * `<N>-refresher` (the CLI's `--records`). It also names the instance's account-wide resources
   * (the record key's alias `alias/ecr-anywhere/<N>`, the dashboard `ecr-anywhere-<N>-<region>`),
   * so two instances in one account and region need two records names. @default ecr-anywhere-clusters
   */
  readonly records?: string;
  /** Prefix of every label and annotation in the clusters. @default ecr-anywhere.centml.ai */
  readonly labelPrefix?: string;
  /** Email address subscribed to the alarm topic. @default no subscription */
  readonly alarmEmail?: string;
  /** An existing SNS topic for alarms instead of a new one. @default a new, KMS-encrypted topic */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Reserved concurrency of the webhook: caps what abuse of its public URL can cost (at most this
   * many environments, and 10 times as many requests a second, before the URL answers 429), and
   * guarantees it that share of the account. Lambda refuses a reservation that would leave the
   * account under 100 unreserved, which new accounts cannot meet: check with
   * `ecr-anywhere preflight`. Unset, the webhook draws on the account's unreserved concurrency
   * like any function (see docs/deploy.md, "Reserved concurrency").
   * @default none
   */
  readonly webhookReservedConcurrency?: number;
  /**
   * Webhook calls (marks) the refresher keeps in flight at once, across a run (split among the
   * workers in fan-out mode). Every mark is one synchronous webhook invocation, so this is the
   * most of the webhook's concurrency a refresh can take from the users' own writes. With a
   * reservation it may be at most half of it.
   * @default 10, or half the webhook's reserved concurrency when that is less
   */
  readonly refresherMarkConcurrency?: number;
  /** Retention of both functions' logs. @default one month */
  readonly logRetention?: logs.RetentionDays;
  /** How long the webhook caches a cluster record: the longest a revoked token keeps working. @default 60 seconds */
  readonly recordCacheTtl?: Duration;
  /** `AuthFailures` in 5 minutes that raise the alarm. @default 20 */
  readonly authFailureAlarmThreshold?: number;
  /** `Denials` in 5 minutes that raise the alarm. @default 1 */
  readonly denialAlarmThreshold?: number;
  /** Alarm when any cluster's managed Secret has less than this left. @default 2 hours */
  readonly minRemainingAlarm?: Duration;
  /**
   * `inline`: one refresher invocation visits every cluster (up to about 50). `fanout`: the
   * refresher queues one SQS message per cluster and a worker function refreshes each.
   * @default inline
   */
  readonly refreshMode?: "inline" | "fanout";
  /** Fan-out mode only: clusters refreshed at once by the worker. @default 10 */
  readonly fanoutConcurrency?: number;
  /**
   * Let tokens import upstream images on a first pull through a pull-through cache rule
   * (`ecr:BatchImportUpstreamImage`, `ecr:CreateRepository` on the allowed registries). A cluster
   * narrowed by `repositories` also needs `pullThroughCache: true` in its record. @default false
   */
  readonly pullThroughCache?: boolean;
  /**
   * How the tokens of clusters without a `roleArn` are scoped to their record (every token is):
   * `federation`, federated sessions of a token broker IAM user whose key a rotation function
   * keeps (12 h tokens); `role-session`, sessions of a pull role the webhook assumes (no IAM user,
   * but 1 h tokens: 12 times the admissions). See docs/contract.md, "Token scoping".
   * @default federation
   */
  readonly tokenScoping?: TokenScopingMode;
  /**
   * Where the refresher (and its fan-out worker) connect to the API servers from: `public`,
   * Lambda's own network; `static-egress`, a VPC whose NAT gateways hold retained Elastic IPs (the
   * stack output `RefresherEgressAddresses`, to allow-list); `vpc`, your VPC, subnets and security
   * groups, for API servers that must stay private. See docs/network.md. @default { mode: "public" }
   */
  readonly refresherNetwork?: RefresherNetworkProps;
}

export class EcrAnywhere extends Construct {
  readonly webhook: lambda.Function;
  readonly refresher: lambda.Function;
  /** Fan-out mode only: the per-cluster worker and its queue. */
  readonly refresherWorker?: lambda.Function;
  readonly fanoutQueue?: sqs.Queue;
  readonly functionUrl: lambda.FunctionUrl;
  /** The registry hosts tokens may pull from: `allowedRegistries`, or the stack's own registry. */
  readonly allowedRegistries: readonly string[];
  readonly alarmTopic: sns.ITopic;
  /** Seals the refresher's kubeconfigs (client-side), and encrypts the shared token table. */
  readonly recordKey: kms.Key;
  /** ECR tokens shared by the webhook's execution environments (encrypted with `recordKey`). */
  readonly tokenTable: dynamodb.Table;
  /** The two cluster record tables, `<records>-webhook` and `<records>-refresher`. */
  readonly records: EcrAnywhereRecords;
  readonly alarms: cloudwatch.Alarm[];
  /** Where the refresher connects from; `network` only when not `public`. */
  readonly refresherNetworkMode: RefresherNetworkMode;
  readonly refresherNetwork?: EcrAnywhereRefresherNetwork;

  constructor(scope: Construct, id: string, props: EcrAnywhereProps = {}) {
    super(scope, id);
    const labelPrefix = props.labelPrefix ?? DEFAULT_LABEL_PREFIX;
    validateEcrAnywhereProps(this, props);
    const names = instanceNames(props.records ?? DEFAULT_RECORDS_NAME);
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const refreshInterval = props.refreshInterval ?? Duration.minutes(15);
    this.records = new EcrAnywhereRecords(this, "Records", {
      recordsName: names.records,
    });
    this.recordKey = new kms.Key(this, "ClusterRecordKey", {
      description:
        "Seals ecr-anywhere cluster records' kubeconfigs (refresher table, client-side) and encrypts the shared token table",
      enableKeyRotation: true,
      alias: names.keyAlias,
    });
    const reserved = props.webhookReservedConcurrency;
    const markConcurrency = validatedMarkConcurrency(
      this,
      reserved,
      props.refresherMarkConcurrency,
    );
    const webhook = new EcrAnywhereWebhook(this, "Webhook", {
      recordKey: this.recordKey,
      recordTable: this.records.webhookTable,
      labelPrefix,
      allowedRegistries: props.allowedRegistries,
      clusterRoleArns: props.clusterRoleArns,
      pullThroughCache: props.pullThroughCache ?? false,
      tokenScoping: props.tokenScoping,
      reservedConcurrentExecutions: reserved,
      recordCacheTtl: props.recordCacheTtl ?? Duration.seconds(60),
      logRetention,
      metricsInstance: names.metricsInstance,
    });
    const networkProps = props.refresherNetwork ?? { mode: "public" };
    this.refresherNetworkMode = networkProps.mode;
    if (networkProps.mode !== "public")
      this.refresherNetwork = new EcrAnywhereRefresherNetwork(
        this,
        "RefresherNetwork",
        networkProps,
      );
    const refresher = new EcrAnywhereRefresher(this, "Refresher", {
      recordKey: this.recordKey,
      recordTable: this.records.refresherTable,
      labelPrefix,
      refreshInterval,
      refreshBefore: props.refreshBefore ?? Duration.hours(6),
      markBudget: markConcurrency,
      mode: props.refreshMode ?? "inline",
      fanoutConcurrency: props.fanoutConcurrency,
      logRetention,
      placement: this.refresherNetwork?.placement,
      metricsInstance: names.metricsInstance,
    });
    const monitoring = new EcrAnywhereMonitoring(this, "Monitoring", {
      webhook,
      refresher,
      refreshInterval,
      alarmEmail: props.alarmEmail,
      alarmTopic: props.alarmTopic,
      authFailureAlarmThreshold: props.authFailureAlarmThreshold,
      denialAlarmThreshold: props.denialAlarmThreshold,
      minRemainingAlarm: props.minRemainingAlarm,
      dashboardName: `${names.dashboardPrefix}-${Stack.of(this).region}`,
      metricsInstance: names.metricsInstance,
    });
    this.webhook = webhook.function;
    this.functionUrl = webhook.functionUrl;
    this.allowedRegistries = webhook.allowedRegistries;
    this.tokenTable = webhook.tokenTable;
    this.refresher = refresher.function;
    this.refresherWorker = refresher.worker;
    this.fanoutQueue = refresher.fanoutQueue;
    this.alarmTopic = monitoring.alarmTopic;
    this.alarms = monitoring.alarms;
  }
}

/**
 * The names of an instance's account-wide resources, from its records name: unique per account and
 * region already, since its tables are named from it. A records name may hold ".", which KMS
 * aliases and dashboard names refuse: it becomes "_", and a hash of the records name keeps two
 * names that differ only there apart.
 */
export function instanceNames(records: string): {
  records: string;
  keyAlias: string;
  dashboardPrefix: string;
  metricsInstance: string | undefined;
} {
  const safe = records.includes(".")
    ? `${records.replaceAll(".", "_")}-${createHash("sha256").update(records).digest("hex").slice(0, 8)}`
    : records;
  return {
    records,
    keyAlias: `alias/ecr-anywhere/${safe}`,
    dashboardPrefix: `ecr-anywhere-${safe}`,
    // The default instance keeps the contract's `service`-only metrics; any other is told apart.
    metricsInstance: records === DEFAULT_RECORDS_NAME ? undefined : records,
  };
}

/** The refresher's marks in flight: its own setting, at most half of a webhook reservation. */
function validatedMarkConcurrency(
  scope: Construct,
  reserved: number | undefined,
  requested: number | undefined,
): number {
  const markConcurrency = markConcurrencyFor(reserved, requested);
  throwIfInvalid(scope, [
    Number.isInteger(markConcurrency) && markConcurrency >= 1 && markConcurrency <= 500
      ? undefined
      : `refresherMarkConcurrency must be a whole number from 1 to 500 (got ${markConcurrency})`,
    reserved === undefined ||
    !Number.isInteger(markConcurrency) ||
    markConcurrency <= maxMarkConcurrency(reserved)
      ? undefined
      : `refresherMarkConcurrency (${markConcurrency}) may be at most half of webhookReservedConcurrency (${reserved}), so a refresh leaves the rest of the reservation to the users' own writes: lower it, or raise the reservation`,
  ]);
  return markConcurrency;
}

const REFRESH_MODES: readonly string[] = ["inline", "fanout"];

/**
 * What the constructs it is made of cannot check: each of those refuses its own props (records
 * name, intervals, thresholds, `fanoutConcurrency` without fan-out, and more).
 */
function validateEcrAnywhereProps(scope: Construct, props: EcrAnywhereProps): void {
  let labelPrefixProblem: string | undefined;
  try {
    contractNames(props.labelPrefix ?? DEFAULT_LABEL_PREFIX);
  } catch (error) {
    labelPrefixProblem = `labelPrefix: ${(error as Error).message}`;
  }
  throwIfInvalid(scope, [
    labelPrefixProblem,
    props.refreshMode === undefined || REFRESH_MODES.includes(props.refreshMode)
      ? undefined
      : `refreshMode must be inline or fanout (got ${String(props.refreshMode)})`,
    props.alarmEmail === undefined || /^[^\s@]+@[^\s@]+$/.test(props.alarmEmail)
      ? undefined
      : `alarmEmail must be an email address (got "${props.alarmEmail}")`,
    // The mode picks the rest of the network's props: JavaScript callers get no type check.
    props.refresherNetwork === undefined ||
    isRefresherNetworkMode(String(props.refresherNetwork.mode))
      ? undefined
      : `refresherNetwork.mode must be public, static-egress or vpc (got ${String(props.refresherNetwork.mode)})`,
  ]);
}
