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
import { InputError, parseClusterId, parseSeconds } from "../core/inputs.ts";
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
import {
  type HeaderRotationContext,
  headerRotationSteps,
  headerRotationSummary,
  verifyWrite,
} from "./header-rotation.ts";

export interface RotateOptions {
  readonly clusterId: string;
  /** Header mode: where to write the new credentials kubeconfig for the API server's hosts. */
  readonly out?: string | undefined;
  /** Header mode, second step: the API servers use the new token; drop the old one. */
  readonly finish: boolean;
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
    .option(
      "--out <dir>",
      "header authentication: write the new webhook-credentials.kubeconfig here, for the API server's hosts",
    )
    .option(
      "--finish",
      "header authentication: the API servers now send the new token; remove the old one and verify",
      false,
    )
    .action(async (clusterId, flags) => {
      const options: RotateOptions = {
        clusterId,
        out: flags.out,
        finish: flags.finish,
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
    const { clusterId } = this.#options;
    const read: Step<undefined> = {
      title: "Read the cluster record and the webhook configuration",
      run: () => this.#read(),
    };
    try {
      const [first] = await this.#factory.printer.steps(undefined, [read]);
      const header = need(this.#current).mode === "header";
      const rest = header
        ? headerRotationSteps(this.#headerContext(), this.#options)
        : this.#urlSteps();
      const done = [
        ...(first ? [first] : []),
        ...(await this.#factory.printer.steps(undefined, rest)),
      ];
      this.#factory.printer.result({ ok: true, clusterId, steps: done }, () =>
        header
          ? headerRotationSummary(this.#options)
          : `\nWebhook token of ${clusterId} rotated; no write was refused.\n`,
      );
    } finally {
      this.#store?.close();
    }
  }

  #headerContext(): HeaderRotationContext {
    return {
      factory: this.#factory,
      cluster: need(this.#cluster),
      store: need(this.#store),
      stored: need(this.#stored),
      url: need(this.#current).url,
    };
  }

  #urlSteps(): Step<undefined>[] {
    const { propagationSeconds } = this.#options;
    if (this.#options.out || this.#options.finish)
      throw new InputError(
        "--out and --finish are for header authentication; this cluster's token is in its webhook URL",
      );
    return [
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
  }

  async #read(): Promise<string> {
    const { clusterId } = this.#options;
    this.#cluster = this.#factory.operatorCluster();
    this.#store = this.#factory.recordStore();
    this.#stored = (await this.#store.readWebhookPart(clusterId))?.record;
    if (!this.#stored)
      throw new Problem(`no valid cluster record for ${clusterId}: run onboard first`);
    this.#current = await registeredWebhook(this.#cluster, clusterId);
    if (!this.#current)
      throw new Problem(
        `cluster ${clusterId} has no webhook configuration here: run onboard first`,
      );
    if (this.#current.mode === "header")
      return "header authentication: the token is not in the URL";
    redact(this.#current.token);
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
    const currentHash = sha256Hex(this.#urlWebhook().token);
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
    const current = this.#urlWebhook();
    const { names } = this.#factory;
    const base = baseOfWebhookUrl(current.url);
    await cluster.apply(
      await this.#configurationWith(
        webhookUrl(base, this.#options.clusterId, need(this.#next).token),
      ),
    );
    const enabled = `${names.namespaceLabel}=${NAMESPACE_ENABLED_VALUE}`;
    if ((await cluster.namespacesWith(enabled)).length === 0)
      return "switched (no enabled namespace to verify in)";
    try {
      const namespace = await verifyWrite(
        { cluster, factory: this.#factory },
        this.#options.verifyTimeoutSeconds,
      );
      return `switched; a dry-run write in ${namespace} passed`;
    } catch (error) {
      // The old token still works: go back to it rather than leave writes refused.
      await cluster.apply(await this.#configurationWith(current.url));
      throw new Problem(
        `the new token was refused (${(error as Error).message}); switched back to the old one, which still works`,
      );
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

  #urlWebhook(): Extract<RegisteredWebhook, { mode: "url" }> {
    const current = need(this.#current);
    if (current.mode !== "url") throw new Error("internal: not a URL-token webhook");
    return current;
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
