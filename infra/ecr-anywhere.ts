/**
 * The whole AWS side of ecr-anywhere as one construct: the webhook Lambda behind a function URL,
 * the scheduled refresher, least-privilege IAM, the KMS key for cluster records, alarms and a
 * dashboard. Composed from small builders below; the props are the only knobs.
 */
import { join } from "node:path";
import {
  ArnFormat,
  type CfnResource,
  Duration,
  RemovalPolicy,
  Stack,
  Validations,
} from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cloudwatchActions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as eventSources from "aws-cdk-lib/aws-lambda-event-sources";
import * as lambdaNodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct, type IConstruct } from "constructs";
import {
  DEFAULT_CLUSTER_RECORD_PREFIX,
  DEFAULT_LABEL_PREFIX,
  METRICS_NAMESPACE,
} from "../functions/core/contract.ts";
import { parseEcrHost } from "../functions/core/registries.ts";
import {
  BUNDLE_ALIASES,
  BUNDLE_MAIN_FIELDS,
  BUNDLE_REQUIRE_SHIM,
  BUNDLE_TARGET,
} from "./bundling.ts";

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
  /** Prefix of every label and annotation in the clusters. @default ecr-anywhere.centml.ai */
  readonly labelPrefix?: string;
  /** Email address subscribed to the alarm topic. @default no subscription */
  readonly alarmEmail?: string;
  /** An existing SNS topic for alarms instead of a new one. @default a new, KMS-encrypted topic */
  readonly alarmTopic?: sns.ITopic;
  /** Reserved concurrency of the webhook: caps the cost of abuse of its public URL. @default 50 */
  readonly webhookReservedConcurrency?: number;
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
  /** Fan-out mode: clusters refreshed at once by the worker. @default 10 */
  readonly fanoutConcurrency?: number;
}

/** The webhook's answer must reach the API server inside its 10 s webhook timeout. */
const WEBHOOK_TIMEOUT = Duration.seconds(10);
const ADMISSION_BUDGET_MS = 8000;
// Inline mode visits up to about 50 clusters, 10 at a time, each within 90 s: 5 rounds fit in 10 min.
const REFRESHER_TIMEOUT = Duration.minutes(10);
const CLUSTER_CONCURRENCY = 10;
const CLUSTER_DEADLINE = Duration.seconds(90);
/**
 * The refresher's share of the webhook's reserved concurrency: every mark is a synchronous webhook
 * call, and the rest stays free for the users' own writes, so a refresh never throttles them.
 */
const REFRESHER_SHARE_OF_WEBHOOK = 0.5;
const repoRoot = join(import.meta.dirname, "..");

export class EcrAnywhere extends Construct {
  readonly webhook: lambda.Function;
  readonly refresher: lambda.Function;
  /** Fan-out mode only: the per-cluster worker and its queue. */
  readonly refresherWorker?: lambda.Function;
  readonly fanoutQueue?: sqs.Queue;
  private fanoutDeadLetters?: sqs.Queue;
  readonly functionUrl: lambda.FunctionUrl;
  readonly alarmTopic: sns.ITopic;
  readonly recordKey: kms.Key;
  /** ECR tokens shared by the webhook's execution environments (encrypted with `recordKey`). */
  readonly tokenTable: dynamodb.Table;
  readonly recordPrefix: string;
  readonly alarms: cloudwatch.Alarm[] = [];
  /** Each function's log group, by construct id: the dashboard queries them per cluster. */
  private readonly logGroups = new Map<string, logs.LogGroup>();

  constructor(scope: Construct, id: string, props: EcrAnywhereProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    this.recordPrefix = DEFAULT_CLUSTER_RECORD_PREFIX;
    const labelPrefix = props.labelPrefix ?? DEFAULT_LABEL_PREFIX;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const recordSecretsArn = stack.formatArn({
      service: "secretsmanager",
      resource: "secret",
      resourceName: `${this.recordPrefix}*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });

    this.recordKey = new kms.Key(this, "ClusterRecordKey", {
      description:
        "Encrypts ecr-anywhere cluster records (kubeconfigs, token hashes) in Secrets Manager",
      enableKeyRotation: true,
      alias: "alias/ecr-anywhere-cluster-records",
    });

    this.tokenTable = new dynamodb.Table(this, "TokenStore", {
      partitionKey: { name: "pk", type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.recordKey,
      // Items go once their token has expired; what is in it is re-minted on demand.
      timeToLiveAttribute: "expiresAt",
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledge(this.tokenTable, {
      "AwsSolutions-DDB3":
        "A cache of tokens that expire within hours: nothing to recover to a point in time.",
    });
    const webhookConcurrency = props.webhookReservedConcurrency ?? 50;
    const markBudget = Math.max(1, Math.floor(webhookConcurrency * REFRESHER_SHARE_OF_WEBHOOK));
    const fanoutConcurrency = props.fanoutConcurrency ?? 10;
    this.webhook = this.lambdaFunction("Webhook", {
      entry: "functions/webhook/handler.ts",
      description: "ecr-anywhere webhook: writes fresh ECR credentials into managed Secrets",
      timeout: WEBHOOK_TIMEOUT,
      reservedConcurrentExecutions: webhookConcurrency,
      logRetention,
      environment: {
        ECR_ANYWHERE_LABEL_PREFIX: labelPrefix,
        ECR_ANYWHERE_CLUSTER_RECORD_PREFIX: this.recordPrefix,
        ECR_ANYWHERE_RECORD_TTL_SECONDS: String(
          (props.recordCacheTtl ?? Duration.seconds(60)).toSeconds(),
        ),
        ECR_ANYWHERE_ADMISSION_BUDGET_MS: String(ADMISSION_BUDGET_MS),
        ECR_ANYWHERE_TOKEN_TABLE: this.tokenTable.tableName,
      },
    });
    const refresherDeadLetters = new sqs.Queue(this, "RefresherDeadLetters", {
      encryption: sqs.QueueEncryption.KMS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(refresherDeadLetters, {
      "AwsSolutions-SQS3":
        "This queue is itself the dead-letter queue of the refresher and its schedule.",
      "Serverless-SQSRedrivePolicy":
        "A dead-letter queue has nowhere further to redrive to; its depth raises an alarm.",
    });
    const refresherEnvironment = {
      ECR_ANYWHERE_LABEL_PREFIX: labelPrefix,
      ECR_ANYWHERE_CLUSTER_RECORD_PREFIX: this.recordPrefix,
      ECR_ANYWHERE_REFRESH_BEFORE_SECONDS: String(
        (props.refreshBefore ?? Duration.hours(6)).toSeconds(),
      ),
      ECR_ANYWHERE_CLUSTER_CONCURRENCY: String(CLUSTER_CONCURRENCY),
      ECR_ANYWHERE_CLUSTER_DEADLINE_SECONDS: String(CLUSTER_DEADLINE.toSeconds()),
      ECR_ANYWHERE_MARK_CONCURRENCY: String(markBudget),
    };
    this.refresher = this.lambdaFunction("Refresher", {
      entry: "functions/refresher/handler.ts",
      deadLetterQueue: refresherDeadLetters,
      description: "ecr-anywhere refresher: marks managed Secrets close to expiry in every cluster",
      timeout: REFRESHER_TIMEOUT,
      logRetention,
      environment: refresherEnvironment,
    });
    this.grantClusterRecords(this.refresher, recordSecretsArn, { list: true });
    if (props.refreshMode === "fanout") {
      // Up to fanoutConcurrency workers run at once: each gets its part of the budget.
      const fanout = this.fanOut(
        {
          ...refresherEnvironment,
          ECR_ANYWHERE_MARK_CONCURRENCY: String(
            Math.max(1, Math.floor(markBudget / fanoutConcurrency)),
          ),
        },
        recordSecretsArn,
        logRetention,
        fanoutConcurrency,
      );
      this.refresherWorker = fanout.worker;
      this.fanoutQueue = fanout.queue;
    }

    acknowledge(this.refresher.node.findChild("EventInvokeConfig"), {
      "Serverless-LambdaAsyncFailureDestination":
        "Failed runs go to the function's dead-letter queue (DeadLetterConfig), which keeps the event; its depth raises an alarm.",
    });
    acknowledge(this.webhook, {
      "Serverless-LambdaDLQ":
        "The webhook is invoked synchronously through its function URL; the API server gets every failure as the answer.",
    });
    this.grantWebhook(props, recordSecretsArn);

    this.functionUrl = this.webhook.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });

    const refreshInterval = props.refreshInterval ?? Duration.minutes(15);
    this.scheduleRefresher(refreshInterval, refresherDeadLetters);
    this.alarmTopic = props.alarmTopic ?? this.newAlarmTopic(props.alarmEmail);
    this.createAlarms(props, refreshInterval, refresherDeadLetters);
    this.createDashboard();
  }

  private lambdaFunction(
    id: string,
    options: {
      entry: string;
      description: string;
      timeout: Duration;
      logRetention: logs.RetentionDays;
      environment: Record<string, string>;
      reservedConcurrentExecutions?: number;
      deadLetterQueue?: sqs.IQueue;
    },
  ): lambda.Function {
    const logGroup = new logs.LogGroup(this, `${id}Logs`, { retention: options.logRetention });
    this.logGroups.set(id, logGroup);
    // Our own role, so logging is granted on this log group only instead of a managed policy's "*".
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: `ecr-anywhere ${id.toLowerCase()} execution role`,
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [logGroup.logGroupArn, `${logGroup.logGroupArn}:log-stream:*`],
      }),
    );
    const logStreams = `Resource::<${Stack.of(this).resolve(Stack.of(this).getLogicalId(logGroup.node.defaultChild as CfnResource))}.Arn>:log-stream:*`;
    acknowledge(role, {
      [`AwsSolutions-IAM5[${logStreams}]`]:
        "Lambda names its log streams at run time; the grant is limited to this function's own log group.",
    });
    const fn = new lambdaNodejs.NodejsFunction(this, id, {
      entry: join(repoRoot, options.entry),
      projectRoot: repoRoot,
      depsLockFilePath: join(repoRoot, "package-lock.json"),
      handler: "handler",
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 512,
      timeout: options.timeout,
      description: options.description,
      role,
      logGroup,
      reservedConcurrentExecutions: options.reservedConcurrentExecutions,
      deadLetterQueue: options.deadLetterQueue,
      // A failed asynchronous run is not retried: the next scheduled run is the retry.
      retryAttempts: options.deadLetterQueue ? 0 : undefined,
      // Source maps ship for decoding traces offline; --enable-source-maps would cost cold start.
      environment: options.environment,
      bundling: {
        // The same bundle scripts/build.ts makes: ESM, SDK included, env-only credentials.
        forceDockerBundling: false,
        format: lambdaNodejs.OutputFormat.ESM,
        target: BUNDLE_TARGET,
        mainFields: BUNDLE_MAIN_FIELDS,
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        externalModules: [],
        banner: BUNDLE_REQUIRE_SHIM,
        esbuildArgs: Object.fromEntries(
          Object.entries(BUNDLE_ALIASES).map(([from, to]) => [`--alias:${from}`, to]),
        ),
      },
    });
    // CDK makes the function depend on its whole role; the reference to the role already orders
    // that (cfn-lint W3005), so only the dependency on the role's policy is kept.
    const policy = role.node.tryFindChild("DefaultPolicy")?.node.defaultChild as CfnResource;
    (fn.node.defaultChild as CfnResource).addOverride("DependsOn", [policy.logicalId]);
    acknowledge(fn, {
      "Serverless-LambdaTracing":
        "Diagnostics come from structured logs and EMF metrics; X-Ray would add per-request cost and an IAM wildcard for no data the logs lack.",
    });
    return fn;
  }

  private grantWebhook(props: EcrAnywhereProps, recordSecretsArn: string): void {
    const stack = Stack.of(this);
    this.webhook.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "MintEcrTokens",
        // GetAuthorizationToken has no resource-level permissions: AWS requires "*".
        actions: ["ecr:GetAuthorizationToken"],
        resources: ["*"],
      }),
    );
    const repositoryArns = (props.allowedRegistries ?? []).map((host) => {
      const registry = parseEcrHost(host);
      if (!registry) throw new Error(`allowedRegistries: "${host}" is not an ECR registry host`);
      return `arn:${partitionOf(registry.region)}:ecr:${registry.region}:${registry.accountId}:repository/*`;
    });
    this.webhook.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "PullFromAllowedRegistries",
        // Tokens carry the minting principal's permissions: these are what kubelet can pull.
        actions: [
          "ecr:BatchGetImage",
          "ecr:GetDownloadUrlForLayer",
          "ecr:BatchCheckLayerAvailability",
        ],
        resources:
          repositoryArns.length > 0
            ? repositoryArns
            : [stack.formatArn({ service: "ecr", resource: "repository", resourceName: "*" })],
      }),
    );
    if (props.clusterRoleArns && props.clusterRoleArns.length > 0) {
      this.webhook.addToRolePolicy(
        new iam.PolicyStatement({
          sid: "AssumeClusterRoles",
          actions: ["sts:AssumeRole"],
          resources: [...props.clusterRoleArns],
        }),
      );
    }
    this.webhook.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "ReadClusterRecords",
        actions: ["secretsmanager:GetSecretValue"],
        resources: [recordSecretsArn],
      }),
    );
    this.webhook.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "ShareTokens",
        // Read, lease and write items of the token table: no scans, no deletes.
        actions: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        resources: [this.tokenTable.tableArn],
      }),
    );
    // Records are only read; the token table, encrypted with the same key, is also written.
    this.recordKey.grant(
      this.webhook,
      "kms:Decrypt",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:DescribeKey",
    );
    acknowledge(this.webhook.role ?? this.webhook, {
      "AwsSolutions-IAM5[Resource::*]":
        'ecr:GetAuthorizationToken supports no resource-level permissions: AWS requires "*".',
      [`AwsSolutions-IAM5[Resource::${RECORD_SECRETS_FINDING}]`]:
        "One secret per cluster, named when the cluster is onboarded: the grant covers exactly the record prefix.",
      ...Object.fromEntries(
        (repositoryArns.length > 0 ? repositoryArns : [DEFAULT_REPOSITORIES_FINDING]).map((arn) => [
          `AwsSolutions-IAM5[Resource::${arn}]`,
          "Tokens may pull any repository of an allowed registry; a cluster record's `repositories` narrows its own tokens with an STS session policy.",
        ]),
      ),
    });
  }

  /** Read (and, for credential renewal, write back) cluster records; the scheduled run also lists them. */
  private grantClusterRecords(
    fn: lambda.Function,
    recordSecretsArn: string,
    options: { list: boolean },
  ): void {
    if (options.list) {
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: "ListClusterRecords",
          // Neither supports resource-level permissions; BatchGetSecretValue is then authorized per
          // secret with GetSecretValue below. They reveal names, not values.
          actions: ["secretsmanager:ListSecrets", "secretsmanager:BatchGetSecretValue"],
          resources: ["*"],
        }),
      );
    }
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "ReadAndRenewClusterRecords",
        actions: ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
        resources: [recordSecretsArn],
      }),
    );
    // PutSecretValue asks KMS for a data key to encrypt the renewed record.
    this.recordKey.grant(fn, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey");
    acknowledge(fn.role ?? fn, {
      ...(options.list
        ? {
            "AwsSolutions-IAM5[Resource::*]":
              'secretsmanager:ListSecrets and the outer check of BatchGetSecretValue support no resource-level permissions: AWS requires "*". They reveal names, not values.',
          }
        : {}),
      [`AwsSolutions-IAM5[Resource::${RECORD_SECRETS_FINDING}]`]:
        "One secret per cluster, named when the cluster is onboarded: the grant covers exactly the record prefix.",
    });
  }

  /** Fan-out: a queue of cluster ids, and a worker that refreshes one cluster per message. */
  private fanOut(
    environment: Record<string, string>,
    recordSecretsArn: string,
    logRetention: logs.RetentionDays,
    concurrency: number,
  ): { queue: sqs.Queue; worker: lambda.Function; deadLetters: sqs.Queue } {
    const deadLetters = new sqs.Queue(this, "FanoutDeadLetters", {
      encryption: sqs.QueueEncryption.KMS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(deadLetters, {
      "AwsSolutions-SQS3": "This queue is itself the dead-letter queue of the fan-out queue.",
      "Serverless-SQSRedrivePolicy":
        "A dead-letter queue has nowhere further to redrive to; its depth raises an alarm.",
    });
    const queue = new sqs.Queue(this, "FanoutQueue", {
      encryption: sqs.QueueEncryption.KMS_MANAGED,
      enforceSSL: true,
      // Longer than a worker run, so a message is not handed out twice while being worked on.
      visibilityTimeout: Duration.seconds(CLUSTER_DEADLINE.toSeconds() * 3),
      retentionPeriod: Duration.hours(1),
      deadLetterQueue: { queue: deadLetters, maxReceiveCount: 3 },
    });
    const worker = this.lambdaFunction("RefresherWorker", {
      entry: "functions/refresher/worker-handler.ts",
      description:
        "ecr-anywhere refresher worker: refreshes the one cluster named by each fan-out message",
      timeout: Duration.seconds(CLUSTER_DEADLINE.toSeconds() + 30),
      logRetention,
      environment,
    });
    acknowledge(worker, {
      "Serverless-LambdaDLQ":
        "The worker is fed by SQS; failed messages go to the fan-out queue's dead-letter queue.",
      "Serverless-LambdaEventSourceMappingDestination":
        "On-failure destinations exist only for stream sources; for SQS the queue's redrive policy moves a failing message to its dead-letter queue.",
    });
    worker.addEventSource(
      new eventSources.SqsEventSource(queue, {
        batchSize: 1,
        reportBatchItemFailures: true,
        maxConcurrency: Math.max(2, concurrency),
      }),
    );
    this.grantClusterRecords(worker, recordSecretsArn, { list: false });
    queue.grantSendMessages(this.refresher);
    this.refresher.addEnvironment("ECR_ANYWHERE_REFRESH_MODE", "fanout");
    this.refresher.addEnvironment("ECR_ANYWHERE_FANOUT_QUEUE_URL", queue.queueUrl);
    this.fanoutDeadLetters = deadLetters;
    return { queue, worker, deadLetters };
  }

  private scheduleRefresher(interval: Duration, deadLetters: sqs.IQueue): events.Rule {
    const rule = new events.Rule(this, "RefresherSchedule", {
      description: "Runs the ecr-anywhere refresher",
      schedule: events.Schedule.rate(interval),
    });
    // Events EventBridge cannot deliver land in the refresher's dead-letter queue as well.
    rule.addTarget(
      new targets.LambdaFunction(this.refresher, {
        retryAttempts: 2,
        maxEventAge: interval,
        deadLetterQueue: deadLetters,
      }),
    );
    return rule;
  }

  private newAlarmTopic(email: string | undefined): sns.Topic {
    const key = new kms.Key(this, "AlarmTopicKey", {
      description: "Encrypts the ecr-anywhere alarm topic",
      enableKeyRotation: true,
    });
    // CloudWatch must be able to publish to an encrypted topic.
    key.grantEncryptDecrypt(new iam.ServicePrincipal("cloudwatch.amazonaws.com"));
    const topic = new sns.Topic(this, "AlarmTopic", {
      displayName: "ecr-anywhere alarms",
      masterKey: key,
      enforceSSL: true,
    });
    if (email) {
      const subscription = topic.addSubscription(new subscriptions.EmailSubscription(email));
      acknowledge(subscription, {
        "Serverless-SNSRedrivePolicy":
          "An undeliverable alarm email cannot be redriven usefully; the alarm's state stays visible in CloudWatch and on the dashboard.",
      });
    }
    return topic;
  }

  private alarm(id: string, props: cloudwatch.AlarmProps): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, props);
    alarm.addAlarmAction(new cloudwatchActions.SnsAction(this.alarmTopic));
    alarm.addOkAction(new cloudwatchActions.SnsAction(this.alarmTopic));
    this.alarms.push(alarm);
    return alarm;
  }

  /** The common alarm: at least `threshold` in one period, and no data means all is well. */
  private alarmWhenAtLeast(
    id: string,
    description: string,
    metric: cloudwatch.IMetric,
    threshold = 1,
  ): cloudwatch.Alarm {
    return this.alarm(id, {
      alarmDescription: description,
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  private createAlarms(
    props: EcrAnywhereProps,
    refreshInterval: Duration,
    deadLetters: sqs.IQueue,
  ): void {
    const fiveMinutes = Duration.minutes(5);
    const sum = { statistic: cloudwatch.Stats.SUM, period: fiveMinutes };
    const deepest = { statistic: cloudwatch.Stats.MAXIMUM, period: fiveMinutes };
    this.alarmWhenAtLeast(
      "RefresherErrorsAlarm",
      "The refresher failed for at least one cluster. Its logs and the per-cluster metrics say which.",
      this.refresher.metricErrors({ statistic: cloudwatch.Stats.SUM, period: refreshInterval }),
    );
    this.alarm("RefresherNotRunningAlarm", {
      alarmDescription:
        "The refresher has not run for two schedule intervals: Secrets will not be refreshed.",
      metric: this.refresher.metricInvocations({
        statistic: cloudwatch.Stats.SUM,
        period: refreshInterval,
      }),
      threshold: 1,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    this.alarmWhenAtLeast(
      "RefresherDeadLettersAlarm",
      "Refresher runs failed or could not be delivered; the dead-letter queue holds each event and its error.",
      deadLetters.metricApproximateNumberOfMessagesVisible(deepest),
    );
    if (this.refresherWorker && this.fanoutQueue && this.fanoutDeadLetters) {
      this.alarmWhenAtLeast(
        "FanoutDeadLettersAlarm",
        "A cluster failed three fan-out attempts in a row; its message is in the fan-out dead-letter queue and the worker's logs say why.",
        this.fanoutDeadLetters.metricApproximateNumberOfMessagesVisible(deepest),
      );
      this.alarm("FanoutBacklogAlarm", {
        alarmDescription:
          "Fan-out messages wait longer than a refresh interval: the worker is failing or too slow (raise fanoutConcurrency).",
        metric: this.fanoutQueue.metricApproximateAgeOfOldestMessage(deepest),
        threshold: refreshInterval.toSeconds(),
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      this.alarmWhenAtLeast(
        "RefresherWorkerErrorsAlarm",
        "The fan-out worker crashed or timed out (cluster failures are reported per message instead).",
        this.refresherWorker.metricErrors(sum),
      );
    }
    this.alarmWhenAtLeast(
      "WebhookErrorsAlarm",
      "The webhook function failed (crash, timeout) or answered 5xx (Secrets Manager unavailable): managed Secrets cannot be written.",
      // Lambda's Errors miss a 5xx the function returns; the function URL's own count has it.
      new cloudwatch.MathExpression({
        expression: "errors + url5xx",
        usingMetrics: {
          errors: this.webhook.metricErrors(sum),
          url5xx: this.webhook.metric("Url5xxCount", sum),
        },
        label: "webhook errors and 5xx answers",
        period: sum.period,
      }),
    );
    this.alarmWhenAtLeast(
      "WebhookThrottlesAlarm",
      "The webhook hit its reserved concurrency: admissions are refused. Raise webhookReservedConcurrency or look for abuse (AuthFailures).",
      this.webhook.metricThrottles(sum),
    );
    this.alarm("WebhookSlowAlarm", {
      alarmDescription:
        "Webhook p99 duration is above half the API server's 10 s timeout: AWS calls are slow.",
      metric: this.webhook.metricDuration({
        statistic: cloudwatch.Stats.percentile(99),
        period: fiveMinutes,
      }),
      threshold: WEBHOOK_TIMEOUT.toMilliseconds() / 2,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.alarmWhenAtLeast(
      "AuthFailuresAlarm",
      "Many rejected webhook callers: a misconfigured cluster (wrong token, invalid record) or someone probing the URL.",
      this.metric("AuthFailures", "ecr-anywhere-webhook", sum),
      props.authFailureAlarmThreshold ?? 20,
    );
    this.alarmWhenAtLeast(
      "DenialsAlarm",
      "The webhook refused to write managed Secrets (ECR throttled or denied, disallowed registry, wrong type). The admission log lines carry the message.",
      // The webhook also counts Denials without ClusterId, for exactly this alarm.
      this.metric("Denials", "ecr-anywhere-webhook", sum),
      props.denialAlarmThreshold ?? 1,
    );
    this.alarm("MinRemainingAlarm", {
      alarmDescription:
        "A managed Secret in some cluster has less than the threshold left before its credentials expire: the refresher is not keeping up. See RefreshFailures and ClusterErrors per cluster.",
      // The refresher also writes the minimum over all clusters without a ClusterId dimension.
      metric: this.metric("MinRemainingSeconds", "ecr-anywhere-refresher", {
        statistic: cloudwatch.Stats.MINIMUM,
        period: refreshInterval,
      }),
      threshold: (props.minRemainingAlarm ?? Duration.hours(2)).toSeconds(),
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  private metric(
    name: string,
    service: string,
    options: cloudwatch.MetricOptions,
  ): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: name,
      dimensionsMap: { service },
      ...options,
    });
  }

  /**
   * Metrics are fleet totals (a ClusterId dimension would cost $0.30 a month per metric per
   * cluster); per-cluster detail comes from the functions' structured log lines, through Logs
   * Insights widgets, one click from the dashboard.
   */
  private createDashboard(): void {
    const total = (name: string, service: string, statistic = "Sum") =>
      this.metric(name, service, { statistic, period: Duration.minutes(5) });
    const webhookTotal = (name: string) => total(name, "ecr-anywhere-webhook");
    const refresherTotal = (name: string) => total(name, "ecr-anywhere-refresher");
    const graph = (title: string, metrics: cloudwatch.IMetric[]) =>
      new cloudwatch.GraphWidget({ title, left: metrics, width: 12 });
    const logsOf = (...ids: string[]) =>
      ids.flatMap((id) => {
        const group = this.logGroups.get(id);
        return group ? [group.logGroupName] : [];
      });
    const table = (title: string, logGroupNames: string[], queryLines: string[]) =>
      new cloudwatch.LogQueryWidget({
        title,
        logGroupNames,
        queryLines,
        view: cloudwatch.LogQueryVisualizationType.TABLE,
        width: 12,
        height: 8,
      });
    new cloudwatch.Dashboard(this, "Dashboard", {
      dashboardName: `ecr-anywhere-${Stack.of(this).stackName}`,
      widgets: [
        [new cloudwatch.AlarmStatusWidget({ title: "Alarms", alarms: this.alarms, width: 24 })],
        [
          graph("Admissions, mutations, denials", [
            webhookTotal("Admissions"),
            webhookTotal("Mutations"),
            webhookTotal("Denials"),
          ]),
          graph("Rejected callers, 4xx and 5xx answers (function URL)", [
            webhookTotal("AuthFailures"),
            this.webhook.metric("Url4xxCount", { statistic: "Sum" }),
            this.webhook.metric("Url5xxCount", { statistic: "Sum" }),
          ]),
        ],
        [
          graph("ECR tokens", [
            webhookTotal("TokenFetches"),
            webhookTotal("TokenCacheHits"),
            webhookTotal("TokenFetchErrors"),
          ]),
          graph("Webhook duration", [
            this.webhook.metricDuration({ statistic: "p50" }),
            this.webhook.metricDuration({ statistic: "p99" }),
          ]),
        ],
        [
          graph("Managed Secrets", [
            refresherTotal("SecretsManaged"),
            refresherTotal("SecretsStale"),
            refresherTotal("SecretsRefreshed"),
          ]),
          graph("Refresh failures, clusters in error", [
            refresherTotal("RefreshFailures"),
            refresherTotal("ClusterErrors"),
          ]),
        ],
        [
          graph("Least time left on any managed Secret (s)", [
            total("MinRemainingSeconds", "ecr-anywhere-refresher", "Minimum"),
          ]),
          graph("Function errors and throttles", [
            this.webhook.metricErrors(),
            this.webhook.metricThrottles(),
            this.refresher.metricErrors(),
            this.refresher.metricInvocations(),
          ]),
        ],
        [
          table(
            "Clusters with the least time left (refresher logs)",
            logsOf("Refresher", "RefresherWorker"),
            [
              "fields clusterId, minRemainingSeconds, secretsStale, refreshFailures, ok",
              'filter message in ["cluster refreshed", "cluster refresh failed"]',
              "stats min(minRemainingSeconds) as leastSecondsLeft, sum(refreshFailures) as failures, latest(ok) as lastRunOk by clusterId",
              "sort leastSecondsLeft asc",
              "limit 50",
            ],
          ),
          table("Admissions by cluster (webhook logs)", logsOf("Webhook"), [
            'filter message = "admission"',
            'stats count(*) as admissions, sum(outcome = "denied") as denied, pct(durationMs, 99) as p99Ms by clusterId',
            "sort denied desc, admissions desc",
            "limit 50",
          ]),
        ],
      ],
    });
  }
}

// How cdk-nag spells the wildcard resources it reports, tokens included.
const RECORD_SECRETS_FINDING = `arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${DEFAULT_CLUSTER_RECORD_PREFIX}*`;
const DEFAULT_REPOSITORIES_FINDING =
  "arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/*";

/** Accepts cdk-nag findings on a construct, each with the reason it is right for this design. */
function acknowledge(scope: IConstruct, reasons: Readonly<Record<string, string>>): void {
  for (const [id, reason] of Object.entries(reasons))
    Validations.of(scope).acknowledge({ id, reason });
}

function partitionOf(region: string): string {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}
