/**
 * `ecr-anywhere rotate-token`: a new webhook token with no refused write. Both hashes are valid
 * while warm webhooks reload the record; only then does the API server switch URLs, and the old
 * hash goes once a write through the new URL is proven.
 */
import { randomBytes } from "node:crypto";
import { sha256Hex } from "../../functions/core/auth.ts";
import {
  contractNames,
  DEFAULT_LABEL_PREFIX,
  NAMESPACE_ENABLED_VALUE,
} from "../../functions/core/contract.ts";
import { RecordStore, type StoredRecord } from "../adapters/aws.ts";
import { type KubeconfigChoice, UserCluster } from "../adapters/user-cluster.ts";
import {
  baseOfWebhookUrl,
  type WebhookToken,
  webhookTokenFrom,
  webhookUrl,
} from "../core/onboard-plan.ts";
import { withNextToken, withOnlyToken } from "../core/rotation.ts";
import { emit, need, type OutputFormat, Problem, redact, runSteps } from "../ui.ts";
import {
  ourWebhookConfiguration,
  type RegisteredWebhook,
  registeredWebhook,
} from "./cluster-objects.ts";

export interface RotateOptions {
  readonly clusterId: string;
  readonly recordPrefix: string;
  readonly kube: KubeconfigChoice;
  readonly labelPrefix?: string | undefined;
  /** How long warm webhooks may serve a cached record: the stack's record TTL plus a margin. */
  readonly propagationSeconds: number;
  readonly verifyTimeoutSeconds: number;
  readonly output: OutputFormat;
}

interface RotateContext {
  cluster?: UserCluster;
  store?: RecordStore;
  stored?: StoredRecord;
  current?: RegisteredWebhook;
  next?: WebhookToken;
}

export async function rotateToken(options: RotateOptions): Promise<void> {
  const prefix = options.labelPrefix ?? DEFAULT_LABEL_PREFIX;
  const names = contractNames(prefix);
  const switchUrl = (current: RegisteredWebhook, url: string) => {
    const caBundle = current.configuration.webhooks[0]?.clientConfig.caBundle;
    return ourWebhookConfiguration(
      url,
      caBundle ? Buffer.from(caBundle, "base64").toString("utf8") : undefined,
      prefix,
    );
  };
  const context: RotateContext = {};
  const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  try {
    const done = await runSteps(
      context,
      [
        {
          title: "Read the cluster record and the webhook configuration",
          run: async (ctx) => {
            ctx.cluster = UserCluster.load(options.kube);
            ctx.store = new RecordStore(options.recordPrefix);
            ctx.stored = await ctx.store.read(options.clusterId);
            if (!ctx.stored?.record)
              throw new Problem(
                `no valid cluster record for ${options.clusterId}: run onboard first`,
              );
            ctx.current = await registeredWebhook(ctx.cluster, options.clusterId);
            if (ctx.current) redact(ctx.current.token);
            if (!ctx.current)
              throw new Problem(
                `cluster ${options.clusterId} has no webhook configuration here: run onboard first`,
              );
            if (!ctx.stored.record.webhookTokenSha256.includes(sha256Hex(ctx.current.token)))
              throw new Problem(
                "the webhook configuration's token is not in the record (it would be refused already): run onboard --rotate-token to replace it at once",
              );
            return "current token matches the record";
          },
        },
        {
          title: "Add the new token's hash to the record",
          run: async (ctx) => {
            const record = need(ctx.stored?.record);
            ctx.next = webhookTokenFrom(randomBytes(32));
            redact(ctx.next.token);
            const updated = withNextToken(
              record,
              sha256Hex(need(ctx.current).token),
              ctx.next.sha256,
            );
            await need(ctx.store).write(updated, need(ctx.stored?.kmsKeyId), ctx.stored);
            ctx.stored = { ...need(ctx.stored), record: updated };
            return "both tokens valid";
          },
        },
        {
          title: `Wait ${options.propagationSeconds} s for warm webhooks to reload the record`,
          run: async () => {
            await sleep(options.propagationSeconds);
            return "done";
          },
        },
        {
          title: "Switch the webhook configuration to the new token and verify",
          run: async (ctx) => {
            const cluster = need(ctx.cluster);
            const current = need(ctx.current);
            const url = webhookUrl(
              baseOfWebhookUrl(current.url),
              options.clusterId,
              need(ctx.next).token,
            );
            await cluster.apply(await switchUrl(current, url));
            const namespace = (
              await cluster.namespacesWith(`${names.namespaceLabel}=${NAMESPACE_ENABLED_VALUE}`)
            )[0];
            if (!namespace) return "switched (no enabled namespace to verify in)";
            const deadline = Date.now() + options.verifyTimeoutSeconds * 1000;
            for (;;) {
              try {
                const secret = await cluster.dryRunManagedSecret(
                  namespace,
                  `ecr-anywhere-verify-${randomBytes(4).toString("hex")}`,
                  names,
                );
                if (secret.metadata?.annotations?.[names.expiresAtAnnotation]) break;
              } catch (error) {
                if (Date.now() > deadline) {
                  // The old token still works: go back to it rather than leave writes refused.
                  await cluster.apply(await switchUrl(current, current.url));
                  throw new Problem(
                    `the new token was refused (${(error as Error).message}); switched back to the old one, which still works`,
                  );
                }
              }
              await sleep(1);
            }
            return `switched; a dry-run write in ${namespace} passed`;
          },
        },
        {
          title: "Remove the old token's hash",
          run: async (ctx) => {
            // API servers pick up the new URL asynchronously; give them a moment before the old one stops working.
            await sleep(Math.min(10, options.propagationSeconds));
            const updated = withOnlyToken(need(ctx.stored?.record), need(ctx.next).sha256);
            await need(ctx.store).write(updated, need(ctx.stored?.kmsKeyId), ctx.stored);
            return "only the new token is valid";
          },
        },
      ],
      options.output,
    );
    emit(
      options.output,
      { ok: true, clusterId: options.clusterId, steps: done },
      () => `\nWebhook token of ${options.clusterId} rotated; no write was refused.\n`,
    );
  } finally {
    context.store?.close();
  }
}
