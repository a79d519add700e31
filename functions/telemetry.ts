/** Structured logs and CloudWatch EMF metrics (Powertools), one pair per function. */
import { Logger } from "@aws-lambda-powertools/logger";

export { MetricUnit } from "@aws-lambda-powertools/metrics";

import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { METRICS_NAMESPACE } from "./core/contract.ts";

export interface Telemetry {
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export function createTelemetry(serviceName: string): Telemetry {
  return {
    logger: new Logger({ serviceName }),
    metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName }),
  };
}

export function count(metrics: Metrics, name: string, value = 1): void {
  metrics.addMetric(name, MetricUnit.Count, value);
}
