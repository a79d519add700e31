/**
 * The package's library entry (`import { EcrAnywhere } from "ecr-anywhere"`): the construct, the
 * stack with the outputs the CLI reads, and the constructs it is composed of. `npm run build`
 * compiles it to `dist/lib/index.mjs` (aws-cdk-lib and constructs stay the app's own) with its
 * types in `dist/types/`; see docs/construct.md.
 */
export type { RefresherNetworkMode } from "../functions/core/network.ts";
export type { TokenScopingMode } from "../functions/core/token-scoping.ts";
export { propsFromContext } from "./config.ts";
export {
  EcrAnywhereMonitoring,
  type EcrAnywhereMonitoringProps,
  type MonitoredRefresher,
  type MonitoredWebhook,
} from "./constructs/monitoring.ts";
export {
  EcrAnywhereRefresherNetwork,
  type RefresherNetworkProps,
} from "./constructs/network.ts";
export { EcrAnywhereRecords, type EcrAnywhereRecordsProps } from "./constructs/records.ts";
export { EcrAnywhereRefresher, type EcrAnywhereRefresherProps } from "./constructs/refresher.ts";
export { EcrAnywhereValidationError, type FunctionPlacement } from "./constructs/shared.ts";
export {
  EcrAnywhereTokenBroker,
  type EcrAnywhereTokenBrokerProps,
} from "./constructs/token-broker.ts";
export { EcrAnywhereWebhook, type EcrAnywhereWebhookProps } from "./constructs/webhook.ts";
export { EcrAnywhere, type EcrAnywhereProps } from "./ecr-anywhere.ts";
export { addEcrAnywhereOutputs, EcrAnywhereStack, type EcrAnywhereStackProps } from "./stack.ts";
