/**
 * Onboard's last step: a dry-run managed Secret in each namespace must come back filled for every
 * registry (retried while the API server picks up the new configuration and warm webhooks their
 * record), and the refresher's own kubeconfig must list managed Secrets there.
 */
import { randomBytes } from "node:crypto";
import { DOCKER_CONFIG_JSON_KEY } from "../../../functions/core/contract.ts";
import { withServer } from "../../../functions/core/kubeconfig.ts";
import { parseRfc3339 } from "../../../functions/core/time.ts";
import type { Factory, OperatorCluster } from "../../factory.ts";
import { need, Problem } from "../../ui.ts";
import type { OnboardOptions, OnboardState } from "./target.ts";

export interface VerifiedNamespace {
  readonly namespace: string;
  readonly registries: string[];
  readonly expiresAt: string;
  readonly roundTripMs: number;
  readonly managedSecretsListed: number;
}

const FORBIDDEN_HINT =
  " (the webhook refused this cluster's token: check that the stack reads the same --records tables, and that --allowed-source-cidrs holds the API server's egress address)";

export async function verifyRoundTrip(
  state: OnboardState,
  options: OnboardOptions,
  factory: Factory,
  progress: (text: string) => void,
): Promise<VerifiedNamespace[]> {
  const cluster = need(state.cluster);
  const deadline = Date.now() + options.verifyTimeoutSeconds * 1000;
  // Checked from here through the operator's route to the API server, with the refresher's token.
  const refresherView = options.apiServerUrl
    ? withServer(need(state.kubeconfig), cluster.server)
    : need(state.kubeconfig);
  const results: VerifiedNamespace[] = [];
  for (const namespace of options.namespaces) {
    let lastError = "";
    for (;;) {
      const attempt = await verifyOnce(cluster, namespace, refresherView, options, factory).catch(
        (error: Error) => error.message,
      );
      if (typeof attempt !== "string") {
        results.push(attempt);
        break;
      }
      lastError = attempt;
      if (Date.now() > deadline)
        throw new Problem(
          `verification in namespace ${namespace} failed after ${options.verifyTimeoutSeconds} s: ${lastError}${/failed to call webhook: Forbidden/.test(lastError) ? FORBIDDEN_HINT : ""}`,
        );
      progress(`${namespace}: waiting for the webhook (${lastError})`);
      await factory.sleep(1000);
    }
  }
  return results;
}

/** One try: the verified namespace, or why it is not verified yet. */
async function verifyOnce(
  cluster: OperatorCluster,
  namespace: string,
  refresherView: string,
  options: OnboardOptions,
  factory: Factory,
): Promise<VerifiedNamespace | string> {
  const { names } = factory;
  const started = performance.now();
  const secret = await cluster.dryRunManagedSecret(
    namespace,
    `ecr-anywhere-verify-${randomBytes(4).toString("hex")}`,
    names,
  );
  const roundTripMs = Math.round(performance.now() - started);
  const auths = registryHostsIn(secret.data?.[DOCKER_CONFIG_JSON_KEY]);
  const missing = options.registries.filter((host) => !auths.includes(host));
  const expiresAt = secret.metadata?.annotations?.[names.expiresAtAnnotation] ?? "";
  if (missing.length > 0 || parseRfc3339(expiresAt) === undefined)
    return `the dry-run Secret came back without credentials for ${missing.join(", ") || "expires_at"}`;
  const listed = await factory
    .recordCluster(refresherView, AbortSignal.timeout(20_000))
    .managedSecrets(namespace, names.managedLabel);
  return {
    namespace,
    registries: options.registries.filter((host) => auths.includes(host)),
    expiresAt,
    roundTripMs,
    managedSecretsListed: listed.length,
  };
}

/** The hosts a dockerconfigjson holds entries for; passwords are never read out. */
function registryHostsIn(base64: string | undefined): string[] {
  try {
    const config = JSON.parse(Buffer.from(base64 ?? "", "base64").toString("utf8")) as {
      auths?: Record<string, { password?: unknown }>;
    };
    return Object.entries(config.auths ?? {})
      .filter(([, entry]) => typeof entry.password === "string" && entry.password.length > 0)
      .map(([host]) => host);
  } catch {
    return [];
  }
}
