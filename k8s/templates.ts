/** Renders the YAML templates in this folder into Kubernetes objects. */
import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { DEFAULT_LABEL_PREFIX } from "../functions/core/contract.ts";

export type TemplateValues = Readonly<Record<string, string>>;

/**
 * Fills `${NAME}` placeholders and parses the YAML. A placeholder without a value is an error, not
 * an empty string, so a half-rendered manifest never reaches a cluster.
 */
export function renderTemplate(template: string, values: TemplateValues): unknown {
  const missing = new Set<string>();
  const text = template.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) missing.add(name);
    return value ?? "";
  });
  if (missing.size > 0) throw new Error(`template values missing: ${[...missing].join(", ")}`);
  return parse(text);
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
