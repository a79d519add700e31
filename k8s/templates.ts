/** Renders the YAML templates in this folder into Kubernetes objects. */
import { readFile } from "node:fs/promises";
import { parse, parseAllDocuments } from "yaml";
import { DEFAULT_LABEL_PREFIX } from "../functions/core/contract.ts";

export type TemplateValues = Readonly<Record<string, string>>;

/**
 * Fills `${NAME}` placeholders and parses the YAML. A placeholder without a value is an error, not
 * an empty string, so a half-rendered manifest never reaches a cluster.
 */
export function renderTemplate(template: string, values: TemplateValues): unknown {
  return parse(fill(template, values));
}

/** The same for a multi-document template: one object per document. */
export function renderTemplates(
  template: string,
  values: TemplateValues,
): Record<string, unknown>[] {
  return parseAllDocuments(fill(template, values)).map(
    (document) => document.toJS() as Record<string, unknown>,
  );
}

function fill(template: string, values: TemplateValues): string {
  const missing = new Set<string>();
  // Only outside comments: a placeholder in a comment needs no value.
  const text = template
    .split("\n")
    .map((line) =>
      line.trimStart().startsWith("#")
        ? line
        : line.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => {
            const value = values[name];
            if (value === undefined) missing.add(name);
            return value ?? "";
          }),
    )
    .join("\n");
  if (missing.size > 0) throw new Error(`template values missing: ${[...missing].join(", ")}`);
  return text;
}

export interface RefresherRbacOptions {
  /** Namespace of the refresher's ServiceAccount. @default ecr-anywhere */
  readonly refresherNamespace?: string;
  readonly serviceAccount?: string;
  readonly labelPrefix?: string;
  /** Namespaces the refresher manages Secrets in (the enabled ones). */
  readonly namespaces: readonly string[];
  /** Namespaces where it may add the Secret to ServiceAccounts (ensure.serviceAccounts). */
  readonly serviceAccountNamespaces?: readonly string[];
}

/** Every object the refresher needs in a cluster, in apply order. */
export async function refresherRbac(
  options: RefresherRbacOptions,
): Promise<Record<string, unknown>[]> {
  const values = {
    REFRESHER_NAMESPACE: options.refresherNamespace ?? "ecr-anywhere",
    SERVICE_ACCOUNT: options.serviceAccount ?? "ecr-anywhere-refresher",
    LABEL_PREFIX: options.labelPrefix ?? DEFAULT_LABEL_PREFIX,
  };
  const serviceAccountNamespaces = options.serviceAccountNamespaces ?? [];
  const [base, secrets, serviceAccounts] = await Promise.all([
    readTemplate("refresher-rbac.yaml"),
    readTemplate("refresher-namespace-binding.yaml"),
    readTemplate("refresher-serviceaccounts-binding.yaml"),
  ]);
  return [
    ...renderTemplates(base, values),
    // Its ClusterRole only with a binding to it: an unbound role is one more object to own.
    ...(serviceAccountNamespaces.length > 0 ? await refresherServiceAccountsRole(options) : []),
    ...options.namespaces.flatMap((namespace) =>
      renderTemplates(secrets, { ...values, NAMESPACE: namespace }),
    ),
    ...serviceAccountNamespaces.flatMap((namespace) =>
      renderTemplates(serviceAccounts, { ...values, NAMESPACE: namespace }),
    ),
  ];
}

/**
 * The ClusterRole that lets the refresher add the managed Secret to ServiceAccounts: rendered by
 * `refresherRbac` only with `serviceAccountNamespaces`, and named here for offboard, which removes
 * it whether or not this onboard rendered it.
 */
export async function refresherServiceAccountsRole(
  options: Pick<RefresherRbacOptions, "labelPrefix"> = {},
): Promise<Record<string, unknown>[]> {
  return renderTemplates(await readTemplate("refresher-serviceaccounts-role.yaml"), {
    LABEL_PREFIX: options.labelPrefix ?? DEFAULT_LABEL_PREFIX,
  });
}

export function readTemplate(name: string): Promise<string> {
  return readFile(new URL(name, import.meta.url), "utf8");
}

export interface WebhookConfigurationOptions {
  /** `https://<host>/v1/clusters/<cluster-id>/<token>` */
  readonly webhookUrl: string;
  /** PEM of the CA that signed the webhook's certificate; omit for a Lambda function URL. */
  readonly caPem?: string;
  readonly labelPrefix?: string;
  readonly name?: string;
}

interface WebhookConfiguration {
  webhooks: { clientConfig: { url: string; caBundle?: string } }[];
}

export async function webhookConfiguration(
  options: WebhookConfigurationOptions,
): Promise<Record<string, unknown>> {
  const rendered = renderTemplate(await readTemplate("mutating-webhook-configuration.yaml"), {
    NAME: options.name ?? "ecr-anywhere",
    LABEL_PREFIX: options.labelPrefix ?? DEFAULT_LABEL_PREFIX,
    // Placeholders only: the real values are set on the parsed object, so nothing needs escaping.
    WEBHOOK_URL: '""',
    CA_BUNDLE: '""',
  }) as WebhookConfiguration;
  for (const webhook of rendered.webhooks) {
    webhook.clientConfig.url = options.webhookUrl;
    if (options.caPem)
      webhook.clientConfig.caBundle = Buffer.from(options.caPem).toString("base64");
    else delete webhook.clientConfig.caBundle;
  }
  return rendered as unknown as Record<string, unknown>;
}

/**
 * The kubeconfig the admission configuration names (cli/core/admission-config.ts): one user per webhook host, named as
 * kube-apiserver matches them (the host, with the port unless it is 443).
 */
export function webhookCredentialsKubeconfig(
  entries: readonly { readonly webhookUrl: string; readonly token: string }[],
): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Config",
    users: entries.map(({ webhookUrl, token }) => {
      const url = new URL(webhookUrl);
      return { name: url.port && url.port !== "443" ? url.host : url.hostname, user: { token } };
    }),
  };
}

/** Kubernetes minor version from which ValidatingAdmissionPolicy is GA (admissionregistration/v1). */
export const SECRET_POLICY_MINIMUM_MINOR = 30;

/**
 * The policy that narrows the refresher's Secret writes to managed dockerconfigjson Secrets, and its
 * binding, in apply order (API servers 1.30 and later).
 */
export async function refresherSecretPolicy(
  options: Pick<RefresherRbacOptions, "refresherNamespace" | "serviceAccount" | "labelPrefix"> = {},
): Promise<Record<string, unknown>[]> {
  return renderTemplates(await readTemplate("refresher-secret-policy.yaml"), {
    REFRESHER_NAMESPACE: options.refresherNamespace ?? "ecr-anywhere",
    SERVICE_ACCOUNT: options.serviceAccount ?? "ecr-anywhere-refresher",
    LABEL_PREFIX: options.labelPrefix ?? DEFAULT_LABEL_PREFIX,
  });
}
