/** Lambda entry point for the scheduled refresher. */
import { createRefresherFromEnv } from "./refresher.ts";

export const handler = createRefresherFromEnv(process.env);
