/**
 * What operators watch: the alarm topic (KMS-encrypted, optional email), the alarms on every
 * failure mode, and a dashboard of the fleet totals with per-cluster tables from Logs Insights.
 */
import { Duration } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cloudwatchActions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";
import { METRICS_NAMESPACE } from "../../functions/core/contract.ts";
import type { EcrAnywhereRefresher } from "./refresher.ts";
import { acknowledge, throwIfInvalid, WEBHOOK_TIMEOUT } from "./shared.ts";
import type { EcrAnywhereWebhook } from "./webhook.ts";

/** What the alarms watch of the webhook (and its token broker's key rotation, when it has one). */
export type MonitoredWebhook = Pick<EcrAnywhereWebhook, "function" | "logGroup"> &
  Partial<Pick<EcrAnywhereWebhook, "tokenBroker">>;
/** What the alarms watch of the refresher (the fan-out parts when it has them). */
export type MonitoredRefresher = Pick<
  EcrAnywhereRefresher,
  "function" | "deadLetters" | "worker" | "fanoutQueue" | "fanoutDeadLetters" | "logGroups"
>;

export interface EcrAnywhereMonitoringProps {
  readonly webhook: MonitoredWebhook;
  readonly refresher: MonitoredRefresher;
  /** The refresher's schedule: a missed run is two of these without an invocation. */
  readonly refreshInterval: Duration;
  /** Email subscribed to a new alarm topic. */
  readonly alarmEmail?: string | undefined;
  /** An existing topic to notify instead of a new one. */
  readonly alarmTopic?: sns.ITopic | undefined;
  /** Rejected callers in 5 minutes that raise AuthFailuresAlarm. @default 20 */
  readonly authFailureAlarmThreshold?: number | undefined;
  /** Denied writes in 5 minutes that raise DenialsAlarm. @default 1 */
  readonly denialAlarmThreshold?: number | undefined;
  /** MinRemainingAlarm fires when a managed Secret has less than this left. @default 2 hours */
  readonly minRemainingAlarm?: Duration | undefined;
  /**
   * The dashboard's name, unique in the account: dashboards are global, not regional.
   * @default a name CloudFormation generates
   */
  readonly dashboardName?: string | undefined;
  /** The functions' `metricsInstance`: the custom metrics' `instance` dimension. @default none */
  readonly metricsInstance?: string | undefined;
}

/**
 * Alarms on every failure mode of a webhook and a refresher, notifying one topic, and their
 * dashboard. Stands alone: give it any webhook and refresher of this project.
 */
export class EcrAnywhereMonitoring extends Construct {
  readonly alarmTopic: sns.ITopic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly #metricsInstance: string | undefined;

  constructor(scope: Construct, id: string, props: EcrAnywhereMonitoringProps) {
    super(scope, id);
    this.#metricsInstance = props.metricsInstance;
    validateMonitoringProps(this, props);
    this.alarmTopic = props.alarmTopic ?? this.newAlarmTopic(props.alarmEmail);
    this.createRefresherAlarms(props);
    this.createFanoutAlarms(props.refresher, props.refreshInterval);
    this.createWebhookAlarms(props);
    this.createFreshnessAlarm(props);
    this.createBrokerKeyAlarm(props.webhook);
    this.createDashboard(props);
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

  /**
   * A failed rotation leaves the current key working, so it is no outage; but a key that is never
   * replaced is the one thing rotation exists to prevent.
   */
  private createBrokerKeyAlarm(webhook: MonitoredWebhook): void {
    const rotation = webhook.tokenBroker?.rotation;
    if (rotation === undefined) return;
    this.alarmWhenAtLeast(
      "BrokerKeyRotationErrorsAlarm",
      "The token broker's key rotation failed (its log says why); the current key keeps working, but is not being replaced.",
      rotation.metricErrors({ statistic: cloudwatch.Stats.SUM, period: Duration.days(1) }),
    );
  }

  private createRefresherAlarms(props: EcrAnywhereMonitoringProps): void {
    const { refreshInterval } = props;
    const refresher = props.refresher.function;
    this.alarmWhenAtLeast(
      "RefresherErrorsAlarm",
      "The refresher failed for at least one cluster. Its logs and the per-cluster metrics say which.",
      refresher.metricErrors({ statistic: cloudwatch.Stats.SUM, period: refreshInterval }),
    );
    this.alarm("RefresherNotRunningAlarm", {
      alarmDescription:
        "The refresher has not run for two schedule intervals: Secrets will not be refreshed.",
      metric: refresher.metricInvocations({
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
      props.refresher.deadLetters.metricApproximateNumberOfMessagesVisible(DEEPEST),
    );
  }

  /** The end-to-end promise: no managed Secret close to expiry, whatever broke. */
  private createFreshnessAlarm(props: EcrAnywhereMonitoringProps): void {
    this.alarm("MinRemainingAlarm", {
      alarmDescription:
        "A managed Secret in some cluster has less than the threshold left before its credentials expire: the refresher is not keeping up. See RefreshFailures and ClusterErrors per cluster.",
      // The refresher also writes the minimum over all clusters without a ClusterId dimension.
      metric: this.metric("MinRemainingSeconds", "ecr-anywhere-refresher", {
        statistic: cloudwatch.Stats.MINIMUM,
        period: props.refreshInterval,
      }),
      threshold: (props.minRemainingAlarm ?? Duration.hours(2)).toSeconds(),
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  private createFanoutAlarms(refresher: MonitoredRefresher, refreshInterval: Duration): void {
    const { worker, fanoutQueue, fanoutDeadLetters } = refresher;
    if (!worker || !fanoutQueue || !fanoutDeadLetters) return;
    this.alarmWhenAtLeast(
      "FanoutDeadLettersAlarm",
      "A cluster failed three fan-out attempts in a row; its message is in the fan-out dead-letter queue and the worker's logs say why.",
      fanoutDeadLetters.metricApproximateNumberOfMessagesVisible(DEEPEST),
    );
    this.alarm("FanoutBacklogAlarm", {
      alarmDescription:
        "Fan-out messages wait longer than a refresh interval: the worker is failing or too slow (raise fanoutConcurrency).",
      metric: fanoutQueue.metricApproximateAgeOfOldestMessage(DEEPEST),
      threshold: refreshInterval.toSeconds(),
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.alarmWhenAtLeast(
      "RefresherWorkerErrorsAlarm",
      "The fan-out worker crashed or timed out (cluster failures are reported per message instead).",
      worker.metricErrors(SUM),
    );
  }

  private createWebhookAlarms(props: EcrAnywhereMonitoringProps): void {
    const webhook = props.webhook.function;
    this.alarmWhenAtLeast(
      "WebhookErrorsAlarm",
      "The webhook function failed (crash, timeout) or answered 5xx (its record table unavailable): managed Secrets cannot be written.",
      // Lambda's Errors miss a 5xx the function returns; the function URL's own count has it.
      new cloudwatch.MathExpression({
        expression: "errors + url5xx",
        usingMetrics: {
          errors: webhook.metricErrors(SUM),
          url5xx: webhook.metric("Url5xxCount", SUM),
        },
        label: "webhook errors and 5xx answers",
        period: SUM.period,
      }),
    );
    this.alarmWhenAtLeast(
      "WebhookThrottlesAlarm",
      "The webhook was throttled (its reserved concurrency, or without one the account's unreserved concurrency, was used up): admissions are refused. Look for abuse (AuthFailures), then raise webhookReservedConcurrency or the account's Lambda quota (docs/deploy.md, Reserved concurrency).",
      webhook.metricThrottles(SUM),
    );
    this.alarm("WebhookSlowAlarm", {
      alarmDescription:
        "Webhook p99 duration is above half the API server's 10 s timeout: AWS calls are slow.",
      metric: webhook.metricDuration({
        statistic: cloudwatch.Stats.percentile(99),
        period: FIVE_MINUTES,
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
      this.metric("AuthFailures", "ecr-anywhere-webhook", SUM),
      props.authFailureAlarmThreshold ?? 20,
    );
    this.alarmWhenAtLeast(
      "DenialsAlarm",
      "The webhook refused to write managed Secrets (ECR throttled or denied, disallowed registry, wrong type). The admission log lines carry the message.",
      this.metric("Denials", "ecr-anywhere-webhook", SUM),
      props.denialAlarmThreshold ?? 1,
    );
  }

  /**
   * Metrics are fleet totals (a ClusterId dimension would cost $0.30 a month per metric per
   * cluster); per-cluster detail comes from the functions' structured log lines, through Logs
   * Insights widgets, one click from the dashboard.
   */
  private createDashboard(props: EcrAnywhereMonitoringProps): void {
    const total = (name: string, service: string, statistic = "Sum") =>
      this.metric(name, service, { statistic, period: FIVE_MINUTES });
    new cloudwatch.Dashboard(this, "Dashboard", {
      dashboardName: props.dashboardName,
      widgets: [
        [new cloudwatch.AlarmStatusWidget({ title: "Alarms", alarms: this.alarms, width: 24 })],
        ...metricRows(props, total),
        clusterTables(props),
      ],
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
      dimensionsMap: {
        service,
        ...(this.#metricsInstance === undefined ? {} : { instance: this.#metricsInstance }),
      },
      ...options,
    });
  }
}

const FIVE_MINUTES = Duration.minutes(5);
const SUM = { statistic: cloudwatch.Stats.SUM, period: FIVE_MINUTES };
const DEEPEST = { statistic: cloudwatch.Stats.MAXIMUM, period: FIVE_MINUTES };

type Total = (name: string, service: string, statistic?: string) => cloudwatch.IMetric;

const graph = (title: string, metrics: cloudwatch.IMetric[]) =>
  new cloudwatch.GraphWidget({ title, left: metrics, width: 12 });

/** The contract's metrics, two graphs a row. */
function metricRows(props: EcrAnywhereMonitoringProps, total: Total): cloudwatch.IWidget[][] {
  const webhook = props.webhook.function;
  const refresher = props.refresher.function;
  const webhookTotal = (name: string) => total(name, "ecr-anywhere-webhook");
  const refresherTotal = (name: string) => total(name, "ecr-anywhere-refresher");
  return [
    [
      graph("Admissions, mutations, denials", [
        webhookTotal("Admissions"),
        webhookTotal("Mutations"),
        webhookTotal("Denials"),
      ]),
      graph("Rejected callers, 4xx and 5xx answers (function URL)", [
        webhookTotal("AuthFailures"),
        webhook.metric("Url4xxCount", { statistic: "Sum" }),
        webhook.metric("Url5xxCount", { statistic: "Sum" }),
      ]),
    ],
    [
      graph("ECR tokens", [
        webhookTotal("TokenFetches"),
        webhookTotal("TokenCacheHits"),
        webhookTotal("TokenFetchErrors"),
      ]),
      graph("Webhook duration", [
        webhook.metricDuration({ statistic: "p50" }),
        webhook.metricDuration({ statistic: "p99" }),
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
        webhook.metricErrors(),
        webhook.metricThrottles(),
        refresher.metricErrors(),
        refresher.metricInvocations(),
      ]),
    ],
  ];
}

/** Per-cluster tables from the functions' log lines (Logs Insights). */
function clusterTables(props: EcrAnywhereMonitoringProps): cloudwatch.IWidget[] {
  const table = (title: string, logGroupNames: string[], queryLines: string[]) =>
    new cloudwatch.LogQueryWidget({
      title,
      logGroupNames,
      queryLines,
      view: cloudwatch.LogQueryVisualizationType.TABLE,
      width: 12,
      height: 8,
    });
  return [
    table(
      "Clusters with the least time left (refresher logs)",
      props.refresher.logGroups.map((group) => group.logGroupName),
      [
        "fields clusterId, minRemainingSeconds, secretsStale, refreshFailures, ok",
        'filter message in ["cluster refreshed", "cluster refresh failed"]',
        "stats min(minRemainingSeconds) as leastSecondsLeft, sum(refreshFailures) as failures, latest(ok) as lastRunOk by clusterId",
        "sort leastSecondsLeft asc",
        "limit 50",
      ],
    ),
    table(
      "Admissions by cluster (webhook logs)",
      [props.webhook.logGroup.logGroupName],
      [
        'filter message = "admission"',
        'stats count(*) as admissions, sum(outcome = "denied") as denied, pct(durationMs, 99) as p99Ms by clusterId',
        "sort denied desc, admissions desc",
        "limit 50",
      ],
    ),
  ];
}

/** Thresholds must be reachable: an alarm that can never fire is a silent hole. */
function validateMonitoringProps(scope: Construct, props: EcrAnywhereMonitoringProps): void {
  const problems = [
    props.authFailureAlarmThreshold !== undefined &&
    !(Number.isInteger(props.authFailureAlarmThreshold) && props.authFailureAlarmThreshold >= 1)
      ? `authFailureAlarmThreshold must be a whole number >= 1, got ${props.authFailureAlarmThreshold}`
      : undefined,
    props.denialAlarmThreshold !== undefined &&
    !(Number.isInteger(props.denialAlarmThreshold) && props.denialAlarmThreshold >= 1)
      ? `denialAlarmThreshold must be a whole number >= 1, got ${props.denialAlarmThreshold}`
      : undefined,
    props.alarmTopic && props.alarmEmail
      ? "alarmEmail subscribes to the topic this construct creates: with alarmTopic, subscribe the address to that topic yourself"
      : undefined,
  ];
  throwIfInvalid(scope, problems);
}
