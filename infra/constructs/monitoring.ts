/**
 * What operators watch: the alarm topic (KMS-encrypted, optional email), the alarms on every
 * failure mode, and a dashboard of the fleet totals with per-cluster tables from Logs Insights.
 */
import { Duration, Stack } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cloudwatchActions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";
import { METRICS_NAMESPACE } from "../../functions/core/contract.ts";
import type { RefresherPart } from "./refresher.ts";
import { acknowledge, WEBHOOK_TIMEOUT } from "./shared.ts";
import type { WebhookPart } from "./webhook.ts";

export interface MonitoringPartProps {
  readonly webhook: WebhookPart;
  readonly refresher: RefresherPart;
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
}

export class MonitoringPart extends Construct {
  readonly alarmTopic: sns.ITopic;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringPartProps) {
    super(scope, id);
    this.alarmTopic = props.alarmTopic ?? this.newAlarmTopic(props.alarmEmail);
    this.createAlarms(props);
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

  private createAlarms(props: MonitoringPartProps): void {
    const { refreshInterval } = props;
    const refresher = props.refresher.function;
    const webhook = props.webhook.function;
    const { deadLetters, worker, fanoutQueue, fanoutDeadLetters } = props.refresher;
    const fiveMinutes = Duration.minutes(5);
    const sum = { statistic: cloudwatch.Stats.SUM, period: fiveMinutes };
    const deepest = { statistic: cloudwatch.Stats.MAXIMUM, period: fiveMinutes };
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
      deadLetters.metricApproximateNumberOfMessagesVisible(deepest),
    );
    if (worker && fanoutQueue && fanoutDeadLetters) {
      this.alarmWhenAtLeast(
        "FanoutDeadLettersAlarm",
        "A cluster failed three fan-out attempts in a row; its message is in the fan-out dead-letter queue and the worker's logs say why.",
        fanoutDeadLetters.metricApproximateNumberOfMessagesVisible(deepest),
      );
      this.alarm("FanoutBacklogAlarm", {
        alarmDescription:
          "Fan-out messages wait longer than a refresh interval: the worker is failing or too slow (raise fanoutConcurrency).",
        metric: fanoutQueue.metricApproximateAgeOfOldestMessage(deepest),
        threshold: refreshInterval.toSeconds(),
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      this.alarmWhenAtLeast(
        "RefresherWorkerErrorsAlarm",
        "The fan-out worker crashed or timed out (cluster failures are reported per message instead).",
        worker.metricErrors(sum),
      );
    }
    this.alarmWhenAtLeast(
      "WebhookErrorsAlarm",
      "The webhook function failed (crash, timeout) or answered 5xx (Secrets Manager unavailable): managed Secrets cannot be written.",
      // Lambda's Errors miss a 5xx the function returns; the function URL's own count has it.
      new cloudwatch.MathExpression({
        expression: "errors + url5xx",
        usingMetrics: {
          errors: webhook.metricErrors(sum),
          url5xx: webhook.metric("Url5xxCount", sum),
        },
        label: "webhook errors and 5xx answers",
        period: sum.period,
      }),
    );
    this.alarmWhenAtLeast(
      "WebhookThrottlesAlarm",
      "The webhook hit its reserved concurrency: admissions are refused. Raise webhookReservedConcurrency or look for abuse (AuthFailures).",
      webhook.metricThrottles(sum),
    );
    this.alarm("WebhookSlowAlarm", {
      alarmDescription:
        "Webhook p99 duration is above half the API server's 10 s timeout: AWS calls are slow.",
      metric: webhook.metricDuration({
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
  private createDashboard(props: MonitoringPartProps): void {
    const webhook = props.webhook.function;
    const refresher = props.refresher.function;
    const total = (name: string, service: string, statistic = "Sum") =>
      this.metric(name, service, { statistic, period: Duration.minutes(5) });
    const webhookTotal = (name: string) => total(name, "ecr-anywhere-webhook");
    const refresherTotal = (name: string) => total(name, "ecr-anywhere-refresher");
    const graph = (title: string, metrics: cloudwatch.IMetric[]) =>
      new cloudwatch.GraphWidget({ title, left: metrics, width: 12 });
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
        [
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
        ],
      ],
    });
  }
}
