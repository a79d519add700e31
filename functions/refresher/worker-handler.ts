/** Lambda entry point for the fan-out worker (SQS event source, one cluster per message). */
import { refresherDependenciesFromEnv } from "./refresher.ts";
import { createWorker } from "./worker.ts";

export const handler = createWorker(refresherDependenciesFromEnv(process.env));
