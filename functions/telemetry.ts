/** Structured logs and CloudWatch EMF metrics (Powertools), one pair per function. */
import { Logger } from "@aws-lambda-powertools/logger";

export { MetricUnit } from "@aws-lambda-powertools/metrics";

import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { METRICS_NAMESPACE } from "./core/contract.ts";

export interface Telemetry {
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/**
 * `instance` (a second deployment's records name) becomes a dimension of every metric beside
 * `service`, so two instances in one account and region keep apart fleets and alarms.
 */
export function createTelemetry(serviceName: string, instance?: string): Telemetry {
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName });
  if (instance !== undefined) metrics.setDefaultDimensions({ instance });
  return { logger: new Logger({ serviceName }), metrics };
}

export function count(metrics: Metrics, name: string, value = 1): void {
  metrics.addMetric(name, MetricUnit.Count, value);
}
