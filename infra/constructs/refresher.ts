/**
 * The refresher: a scheduled function that marks stale managed Secrets in every registered
 * cluster (inline), or queues one message per cluster for a worker (fan-out), with their
 * dead-letter queues and the grants on its own table of cluster records.
 */
import { Duration } from "aws-cdk-lib";
import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as eventSources from "aws-cdk-lib/aws-lambda-event-sources";
import type * as logs from "aws-cdk-lib/aws-logs";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { markSplit } from "../../functions/core/concurrency.ts";
import { ENV } from "../../functions/core/config.ts";
import { KUBECONFIG_PURPOSE } from "../../functions/core/envelope.ts";
import {
  acknowledge,
  CLUSTER_CONCURRENCY,
  CLUSTER_DEADLINE,
  ecrAnywhereFunction,
  type FunctionPlacement,
  instanceEnvironment,
  REFRESHER_TIMEOUT,
  throwIfInvalid,
} from "./shared.ts";

export interface EcrAnywhereRefresherProps extends Pick<lambda.FunctionOptions, "memorySize"> {
  /**
   * Added as the `instance` dimension of the function's custom metrics (and the alarms on them),
   * so a second deployment in one account and region keeps its own. @default none: `service` only
   */
  readonly metricsInstance?: string | undefined;
  /**
   * Opens sealed kubeconfigs, and seals renewed ones: only under the encryption context
   * `purpose: ecr-anywhere-refresher-kubeconfig`.
   */
  readonly recordKey: kms.IKey;
  /** The refresher's table of cluster records (`<records>-refresher`): nothing on the webhook's. */
  readonly recordTable: dynamodb.ITable;
  /** Prefix of every label and annotation in the clusters. */
  readonly labelPrefix: string;
  /** How often the refresher runs: whole minutes, at least one. */
  readonly refreshInterval: Duration;
  /** Refresh a Secret this long before expiry (capped at half its lifetime): 1 minute to 11 hours. */
  readonly refreshBefore: Duration;
  /** Webhook calls (marks) in flight at once across the refresh: split among fan-out workers. */
  readonly markBudget: number;
  /** `inline`: one run visits every cluster; `fanout`: one SQS message and worker per cluster. */
  readonly mode: "inline" | "fanout";
  /** Fan-out only: clusters refreshed at once, one worker each (2 to 1,000). @default 10 */
  readonly fanoutConcurrency?: number | undefined;
  readonly logRetention: logs.RetentionDays;
  /** A VPC for the refresher and its worker (`EcrAnywhereRefresherNetwork`). @default Lambda's own network */
  readonly placement?: FunctionPlacement | undefined;
}

/**
 * The refresher: a scheduled function that marks stale managed Secrets in every registered
 * cluster, or queues one message per cluster for a worker (fan-out), with dead-letter queues and
 * the grants on its table of cluster records. Stands alone: give it the record key and its table.
 */
export class EcrAnywhereRefresher extends Construct {
  readonly function: lambda.Function;
  /** Where failed runs and undeliverable schedule events land. */
  readonly deadLetters: sqs.Queue;
  /** Fan-out mode only. */
  readonly worker?: lambda.Function;
  readonly fanoutQueue?: sqs.Queue;
  readonly fanoutDeadLetters?: sqs.Queue;
  /** The scheduled function's log group, and the worker's in fan-out mode. */
  readonly logGroups: logs.LogGroup[] = [];
  private readonly recordKey: kms.IKey;
  private readonly recordTable: dynamodb.ITable;

  constructor(scope: Construct, id: string, props: EcrAnywhereRefresherProps) {
    super(scope, id);
    validateRefresherProps(this, props);
    this.recordKey = props.recordKey;
    this.recordTable = props.recordTable;
    this.deadLetters = new sqs.Queue(this, "DeadLetters", {
      encryption: sqs.QueueEncryption.KMS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.deadLetters, {
      "AwsSolutions-SQS3":
        "This queue is itself the dead-letter queue of the refresher and its schedule.",
      "Serverless-SQSRedrivePolicy":
        "A dead-letter queue has nowhere further to redrive to; its depth raises an alarm.",
    });
    const environment = {
      [ENV.labelPrefix]: props.labelPrefix,
      [ENV.refresherRecordTable]: props.recordTable.tableName,
      [ENV.recordKeyArn]: props.recordKey.keyArn,
      [ENV.refreshBeforeSeconds]: String(props.refreshBefore.toSeconds()),
      [ENV.clusterConcurrency]: String(CLUSTER_CONCURRENCY),
      [ENV.clusterDeadlineSeconds]: String(CLUSTER_DEADLINE.toSeconds()),
      ...instanceEnvironment(props.metricsInstance),
    };
    // The budget split statically: the scheduled run (inline) or its workers (fan-out, up to
    // fanoutConcurrency at once) beside one-cluster checks, which the refresher runs itself.
    const split = markSplit(
      props.markBudget,
      props.mode === "fanout" ? fanoutConcurrencyOf(props) : 1,
    );
    const { fn, logGroup } = ecrAnywhereFunction(this, {
      name: "refresher",
      memorySize: props.memorySize,
      entry: "functions/refresher/handler.ts",
      deadLetterQueue: this.deadLetters,
      description:
        "ecr-anywhere refresher: marks managed Secrets close to expiry in every cluster, or in the one a check names",
      timeout: REFRESHER_TIMEOUT,
      logRetention: props.logRetention,
      environment: {
        ...environment,
        [ENV.markConcurrency]: String(split.perRunner),
        [ENV.checkMarkConcurrency]: String(split.check),
      },
      placement: props.placement,
    });
    this.function = fn;
    this.logGroups.push(logGroup);
    // Fan-out too: the scheduled run only lists ids, but a one-cluster check reads, opens and
    // writes back like the worker.
    this.grantClusterRecords(this.function);
    if (props.mode === "fanout") {
      const concurrency = fanoutConcurrencyOf(props);
      // Up to fanoutConcurrency workers run at once: each gets its part of the budget.
      const fanout = this.fanOut(
        { ...environment, [ENV.markConcurrency]: String(split.perRunner) },
        props,
        concurrency,
      );
      this.worker = fanout.worker;
      this.fanoutQueue = fanout.queue;
      this.fanoutDeadLetters = fanout.deadLetters;
    }
    acknowledge(this.function.node.findChild("EventInvokeConfig"), {
      "Serverless-LambdaAsyncFailureDestination":
        "Failed runs go to the function's dead-letter queue (DeadLetterConfig), which keeps the event; its depth raises an alarm.",
    });
    this.scheduleRefresher(props.refreshInterval, this.deadLetters);
  }

  /**
   * Its own table only: reads items (Scan lists them), writes back its renewed kubeconfig and
   * state (UpdateItem, which the code always conditions on the revision it read), and uses the
   * record key only with the kubeconfig's encryption context.
   */
  private grantClusterRecords(fn: lambda.Function): void {
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "RefresherClusterRecords",
        actions: ["dynamodb:GetItem", "dynamodb:Scan", "dynamodb:UpdateItem"],
        resources: [this.recordTable.tableArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "OpenAndSealKubeconfigs",
        actions: ["kms:Decrypt", "kms:GenerateDataKey"],
        resources: [this.recordKey.keyArn],
        conditions: { StringEquals: { "kms:EncryptionContext:purpose": KUBECONFIG_PURPOSE } },
      }),
    );
  }

  /** Fan-out: a queue of cluster ids, and a worker that refreshes one cluster per message. */
  private fanOut(
    environment: Record<string, string>,
    props: EcrAnywhereRefresherProps,
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
    const { fn: worker, logGroup } = ecrAnywhereFunction(new Construct(this, "Worker"), {
      name: "refresher worker",
      memorySize: props.memorySize,
      entry: "functions/refresher/worker-handler.ts",
      description:
        "ecr-anywhere refresher worker: refreshes the one cluster named by each fan-out message",
      timeout: Duration.seconds(CLUSTER_DEADLINE.toSeconds() + 30),
      logRetention: props.logRetention,
      environment,
      placement: props.placement,
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
    this.grantClusterRecords(worker);
    queue.grantSendMessages(this.function);
    this.function.addEnvironment(ENV.refreshMode, "fanout");
    this.function.addEnvironment(ENV.fanoutQueueUrl, queue.queueUrl);
    this.logGroups.push(logGroup);
    return { queue, worker, deadLetters };
  }

  private scheduleRefresher(interval: Duration, deadLetters: sqs.IQueue): events.Rule {
    const rule = new events.Rule(this, "Schedule", {
      description: "Runs the ecr-anywhere refresher",
      schedule: events.Schedule.rate(interval),
    });
    // Events EventBridge cannot deliver land in the refresher's dead-letter queue as well.
    rule.addTarget(
      new targets.LambdaFunction(this.function, {
        retryAttempts: 2,
        maxEventAge: interval,
        deadLetterQueue: deadLetters,
      }),
    );
    return rule;
  }
}

const DEFAULT_FANOUT_CONCURRENCY = 10;

/**
 * Each worker keeps at least one mark in flight, so at most `markBudget` workers may run at once,
 * or a refresh would take more of the webhook's concurrency than its budget: the default follows
 * a smaller budget, and a larger setting is refused (validateRefresherProps).
 */
function fanoutConcurrencyOf(props: EcrAnywhereRefresherProps): number {
  return (
    props.fanoutConcurrency ?? Math.max(2, Math.min(DEFAULT_FANOUT_CONCURRENCY, props.markBudget))
  );
}

function validateRefresherProps(scope: Construct, props: EcrAnywhereRefresherProps): void {
  const minutes = props.refreshInterval.toSeconds() / 60;
  const before = props.refreshBefore.toSeconds();
  throwIfInvalid(scope, [
    Number.isInteger(minutes) && minutes >= 1
      ? undefined
      : `refreshInterval must be whole minutes, at least one (got ${props.refreshInterval.toHumanString()})`,
    before >= 60 && before <= 11 * 3600
      ? undefined
      : `refreshBefore must be from 1 minute to 11 hours: ECR tokens last 12 (got ${props.refreshBefore.toHumanString()})`,
    Number.isInteger(props.markBudget) && props.markBudget >= 1
      ? undefined
      : `markBudget must be a whole number >= 1 (got ${props.markBudget})`,
    props.fanoutConcurrency !== undefined && props.mode !== "fanout"
      ? "fanoutConcurrency applies only to mode fanout: remove it, or set the mode"
      : undefined,
    props.fanoutConcurrency !== undefined &&
    !(
      Number.isInteger(props.fanoutConcurrency) &&
      props.fanoutConcurrency >= 2 &&
      props.fanoutConcurrency <= 1000
    )
      ? `fanoutConcurrency must be a whole number from 2 to 1,000 (got ${props.fanoutConcurrency})`
      : undefined,
    props.mode === "fanout" && fanoutConcurrencyOf(props) > props.markBudget
      ? `fanoutConcurrency (${fanoutConcurrencyOf(props)}) may not exceed the refresher's mark concurrency (${props.markBudget}): every worker keeps a mark in flight, so more workers would take more of the webhook's concurrency than a refresh may. Lower fanoutConcurrency, or raise refresherMarkConcurrency`
      : undefined,
  ]);
}
