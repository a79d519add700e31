/**
 * `rotate-token` for a cluster with header authentication, where the token lives in kube-apiserver's
 * admission kubeconfig, not in the webhook URL. It takes two runs, because only a person can put
 * a file on the API server's hosts and restart them:
 *
 * 1. `rotate-token <id> --out <dir>`: both hashes become valid, and the new token is written to
 *    `<dir>/webhook-credentials.kubeconfig` (0600; it is never printed).
 * 2. Install that file on every API server host, restart them, then `rotate-token <id> --finish`:
 *    the old hash goes, a write through the API server proves the new token is in use, and if it
 *    is not, the old hash comes back (nothing is left refusing writes).
 */
import { randomBytes } from "node:crypto";
import { stringify } from "yaml";
import type { WebhookRecord } from "../../functions/core/cluster-record.ts";
import { NAMESPACE_ENABLED_VALUE } from "../../functions/core/contract.ts";
import { webhookCredentialsKubeconfig } from "../../k8s/webhook-configuration.ts";
import { privateDirectory, writePrivateFile } from "../adapters/private-files.ts";
import { CREDENTIALS_FILE } from "../core/gitops-layout.ts";
import { InputError } from "../core/inputs.ts";
import { webhookTokenFrom } from "../core/onboard-plan.ts";
import { withOnlyToken } from "../core/rotation.ts";
import type { Factory, OperatorCluster, Records } from "../factory.ts";
import { Problem, redact, type Step } from "../ui.ts";

export interface HeaderRotationOptions {
  readonly clusterId: string;
  readonly out?: string | undefined;
  readonly finish: boolean;
  readonly propagationSeconds: number;
  readonly verifyTimeoutSeconds: number;
}

export interface HeaderRotationContext {
  readonly factory: Factory;
  readonly cluster: OperatorCluster;
  readonly store: Records;
  readonly stored: WebhookRecord;
  /** The webhook configuration's URL (no token): the kubeconfig's user is named by its host. */
  readonly url: string;
}

export function headerRotationSteps(
  context: HeaderRotationContext,
  options: HeaderRotationOptions,
): Step<undefined>[] {
  const hashes = context.stored.webhookTokenSha256;
  if (options.finish) {
    if (options.out) throw new InputError("--finish takes no --out: it writes no file");
    if (hashes.length < 2)
      throw new Problem(
        `no rotation is under way for ${options.clusterId} (its record holds one token): start one with rotate-token ${options.clusterId} --out <dir>`,
      );
    return [
      {
        title: "Remove the old token's hash and verify a write through the API server",
        run: () => finish(context, options),
      },
    ];
  }
  const out = options.out;
  if (!out)
    throw new InputError(
      "--out is needed with header authentication: the new token goes into a kubeconfig for the API server's hosts, never to the terminal",
    );
  if (hashes.length > 1)
    throw new Problem(
      `a rotation is already under way for ${options.clusterId}: install the credentials written then and run rotate-token ${options.clusterId} --finish`,
    );
  return [
    {
      title: "Add the new token's hash to the record and write its credentials kubeconfig",
      run: () => start(context, out),
    },
    {
      // Warm webhooks keep the old record for its TTL: an API server restarted sooner is refused.
      title: `Wait ${options.propagationSeconds} s for warm webhooks to reload the record`,
      run: async () => {
        await context.factory.sleep(options.propagationSeconds * 1000);
        return "the new token is accepted";
      },
    },
  ];
}

async function start(context: HeaderRotationContext, out: string): Promise<string> {
  const next = webhookTokenFrom(randomBytes(32));
  redact(next.token);
  // The file first: a record change without it would leave a token nobody can use.
  await privateDirectory(out);
  const kubeconfig = webhookCredentialsKubeconfig([{ webhookUrl: context.url, token: next.token }]);
  await writePrivateFile(out, CREDENTIALS_FILE, stringify(kubeconfig));
  const { stored } = context;
  await context.store.replaceTokenHashes(stored.clusterId, stored.webhookTokenSha256, [
    ...stored.webhookTokenSha256,
    next.sha256,
  ]);
  return `both tokens valid; the new one is in ${out}/${CREDENTIALS_FILE}`;
}

async function finish(
  context: HeaderRotationContext,
  options: HeaderRotationOptions,
): Promise<string> {
  const { stored, store, factory } = context;
  const both = stored.webhookTokenSha256;
  const newest = both.at(-1) ?? "";
  const only = withOnlyToken(stored, newest).webhookTokenSha256;
  await store.replaceTokenHashes(stored.clusterId, both, only);
  // Warm webhooks keep the old record for its TTL: only after it is a refusal the new token's fault.
  await factory.sleep(options.propagationSeconds * 1000);
  try {
    const namespace = await verifyWrite(context, options.verifyTimeoutSeconds);
    return `only the new token is valid; a dry-run write in ${namespace} passed`;
  } catch (error) {
    await store.replaceTokenHashes(stored.clusterId, only, both);
    throw new Problem(
      `the API server does not send the new token yet (${(error as Error).message}): both tokens are valid again. Check that ${CREDENTIALS_FILE} is installed on every API server host and each was restarted, then run --finish again`,
    );
  }
}

/**
 * A dry-run managed Secret in an enabled namespace comes back filled, within `timeoutSeconds`:
 * the name of that namespace. Both rotation modes prove a switch this way.
 */
export async function verifyWrite(
  context: Pick<HeaderRotationContext, "cluster" | "factory">,
  timeoutSeconds: number,
): Promise<string> {
  const { cluster, factory } = context;
  const { names } = factory;
  const namespace = (
    await cluster.namespacesWith(`${names.namespaceLabel}=${NAMESPACE_ENABLED_VALUE}`)
  )[0];
  if (!namespace) throw new Error("no enabled namespace to verify in");
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    try {
      const secret = await cluster.dryRunManagedSecret(
        namespace,
        `ecr-anywhere-verify-${randomBytes(4).toString("hex")}`,
        names,
      );
      if (secret.metadata?.annotations?.[names.expiresAtAnnotation]) return namespace;
      throw new Error("the dry-run Secret came back without expires_at");
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await factory.sleep(1000);
  }
}

export function headerRotationSummary(options: HeaderRotationOptions): string {
  return options.finish
    ? `\nWebhook token of ${options.clusterId} rotated: the API servers send the new one, and the old one is no longer valid.\n`
    : [
        "",
        `Both tokens of ${options.clusterId} are valid now. Next:`,
        `  1. install ${options.out}/${CREDENTIALS_FILE} on every API server host, where its admission configuration names it (mode 0600);`,
        "  2. restart kube-apiserver on each (it reads that file at start);",
        `  3. run: ecr-anywhere rotate-token ${options.clusterId} --finish`,
        "",
      ].join("\n");
}
