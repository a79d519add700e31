/** Lambda entry point for the refresher: its scheduled run, and one-cluster checks (docs/contract.md). */
import { createRefresherFromEnv } from "./refresher.ts";

export const handler = createRefresherFromEnv(process.env);
