/**
 * `ecr-anywhere rotate-token`: a new webhook token with no refused write. Both hashes are valid
 * while warm webhooks reload the record; only then does the API server switch URLs, and the old
 * hash goes once a write through the new URL is proven. It changes only the webhook's part of the
 * record, each time conditioned on the hashes it read (no KMS call: nothing secret is read).
 */
import { randomBytes } from "node:crypto";
import { Command } from "@commander-js/extra-typings";
import { sha256Hex } from "../../functions/core/auth.ts";
import type { WebhookRecord } from "../../functions/core/cluster-record.ts";
import { NAMESPACE_ENABLED_VALUE } from "../../functions/core/contract.ts";
import { parseClusterId, parseSeconds } from "../core/inputs.ts";
import {
  baseOfWebhookUrl,
  type WebhookToken,
  webhookTokenFrom,
  webhookUrl,
} from "../core/onboard-plan.ts";
import { withNextToken, withOnlyToken } from "../core/rotation.ts";
import type { Factory, OperatorCluster, Records } from "../factory.ts";
import { checked } from "../flags.ts";
import { need, Problem, redact, type Step } from "../ui.ts";
import {
  ourWebhookConfiguration,
  type RegisteredWebhook,
  registeredWebhook,
} from "./cluster-objects.ts";

export interface RotateOptions {
  readonly clusterId: string;
  /** How long warm webhooks may serve a cached record: the stack's record TTL plus a margin. */
  readonly propagationSeconds: number;
  readonly verifyTimeoutSeconds: number;
}

export function newRotateTokenCommand(factory: () => Factory) {
  return new Command("rotate-token")
    .description("give a cluster a new webhook token with zero downtime")
    .argument("<cluster-id>", "the cluster", checked(parseClusterId))
    .option(
      "--propagation-seconds <seconds>",
      "how long warm webhooks may cache the record (the stack's record TTL, 60, plus a margin)",
      checked(parseSeconds),
      65,
    )
    .option(
      "--verify-timeout <seconds>",
      "how long to wait for a write through the new URL",
      checked(parseSeconds),
      60,
    )
    .action(async (clusterId, flags) => {
      const options: RotateOptions = {
        clusterId,
        propagationSeconds: flags.propagationSeconds,
        verifyTimeoutSeconds: flags.verifyTimeout,
      };
      await new Rotation(options, factory()).run();
    });
}

/** One rotation: each step a method, sharing what the earlier ones found. */
class Rotation {
  readonly #options: RotateOptions;
  readonly #factory: Factory;
  #cluster: OperatorCluster | undefined;
  #store: Records | undefined;
  #stored: WebhookRecord | undefined;
  #current: RegisteredWebhook | undefined;
  #next: WebhookToken | undefined;

  constructor(options: RotateOptions, factory: Factory) {
    this.#options = options;
    this.#factory = factory;
  }

  async run(): Promise<void> {
    const { clusterId, propagationSeconds } = this.#options;
    const steps: Step<undefined>[] = [
      { title: "Read the cluster record and the webhook configuration", run: () => this.#read() },
      { title: "Add the new token's hash to the record", run: () => this.#addNextHash() },
      {
        title: `Wait ${propagationSeconds} s for warm webhooks to reload the record`,
        run: async () => {
          await this.#factory.sleep(propagationSeconds * 1000);
          return "done";
        },
      },
      {
        title: "Switch the webhook configuration to the new token and verify",
        run: () => this.#switchAndVerify(),
      },
      { title: "Remove the old token's hash", run: () => this.#removeOldHash() },
    ];
    try {
      const done = await this.#factory.printer.steps(undefined, steps);
      this.#factory.printer.result(
        { ok: true, clusterId, steps: done },
        () => `\nWebhook token of ${clusterId} rotated; no write was refused.\n`,
      );
    } finally {
      this.#store?.close();
    }
  }

  async #read(): Promise<string> {
    const { clusterId } = this.#options;
    this.#cluster = this.#factory.operatorCluster();
    this.#store = this.#factory.recordStore();
    this.#stored = (await this.#store.readWebhookPart(clusterId))?.record;
    if (!this.#stored)
      throw new Problem(`no valid cluster record for ${clusterId}: run onboard first`);
    this.#current = await registeredWebhook(this.#cluster, clusterId);
    if (this.#current) redact(this.#current.token);
    if (!this.#current)
      throw new Problem(
        `cluster ${clusterId} has no webhook configuration here: run onboard first`,
      );
    if (!this.#stored.webhookTokenSha256.includes(sha256Hex(this.#current.token)))
      throw new Problem(
        "the webhook configuration's token is not in the record (it would be refused already): run onboard --rotate-token to replace it at once",
      );
    return "current token matches the record";
  }

  async #addNextHash(): Promise<string> {
    const stored = need(this.#stored);
    this.#next = webhookTokenFrom(randomBytes(32));
    redact(this.#next.token);
    const currentHash = sha256Hex(need(this.#current).token);
    const updated = withNextToken(stored, currentHash, this.#next.sha256);
    await need(this.#store).replaceTokenHashes(
      stored.clusterId,
      stored.webhookTokenSha256,
      updated.webhookTokenSha256,
    );
    this.#stored = updated;
    return "both tokens valid";
  }

  async #switchAndVerify(): Promise<string> {
    const cluster = need(this.#cluster);
    const current = need(this.#current);
    const { names } = this.#factory;
    const base = baseOfWebhookUrl(current.url);
    await cluster.apply(
      await this.#configurationWith(
        webhookUrl(base, this.#options.clusterId, need(this.#next).token),
      ),
    );
    const enabled = `${names.namespaceLabel}=${NAMESPACE_ENABLED_VALUE}`;
    const namespace = (await cluster.namespacesWith(enabled))[0];
    if (!namespace) return "switched (no enabled namespace to verify in)";
    const deadline = Date.now() + this.#options.verifyTimeoutSeconds * 1000;
    for (;;) {
      try {
        const secret = await cluster.dryRunManagedSecret(
          namespace,
          `ecr-anywhere-verify-${randomBytes(4).toString("hex")}`,
          names,
        );
        if (secret.metadata?.annotations?.[names.expiresAtAnnotation])
          return `switched; a dry-run write in ${namespace} passed`;
        throw new Error("the dry-run Secret came back without expires_at");
      } catch (error) {
        if (Date.now() > deadline) {
          // The old token still works: go back to it rather than leave writes refused.
          await cluster.apply(await this.#configurationWith(current.url));
          throw new Problem(
            `the new token was refused (${(error as Error).message}); switched back to the old one, which still works`,
          );
        }
      }
      await this.#factory.sleep(1000);
    }
  }

  async #removeOldHash(): Promise<string> {
    // API servers pick up the new URL asynchronously; give them a moment before the old one stops working.
    await this.#factory.sleep(Math.min(10, this.#options.propagationSeconds) * 1000);
    const stored = need(this.#stored);
    const updated = withOnlyToken(stored, need(this.#next).sha256);
    await need(this.#store).replaceTokenHashes(
      stored.clusterId,
      stored.webhookTokenSha256,
      updated.webhookTokenSha256,
    );
    return "only the new token is valid";
  }

  /** The whole configuration with another URL, keeping the CA it has. */
  #configurationWith(url: string) {
    const caBundle = need(this.#current).configuration.webhooks[0]?.clientConfig.caBundle;
    return ourWebhookConfiguration(
      url,
      caBundle ? Buffer.from(caBundle, "base64").toString("utf8") : undefined,
      this.#factory.labelPrefix,
    );
  }
}
