/** Lambda entry point for the token broker's key rotation (schedule and custom resource). */
import { createBrokerRotationFromEnv } from "./broker-rotation.ts";

export const handler = createBrokerRotationFromEnv(process.env);
