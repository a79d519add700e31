/** Lambda entry point for the webhook function URL. */
import { createWebhookFromEnv } from "./webhook.ts";

export const handler = createWebhookFromEnv(process.env);
