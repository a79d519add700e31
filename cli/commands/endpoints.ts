/** Where onboarding writes and points: the webhook URL, record prefix and key, from flags or the stack. */
import { readFile } from "node:fs/promises";
import { readStackOutputs } from "../adapters/aws.ts";
import { InputError } from "../core/inputs.ts";

export interface AwsTarget {
  readonly stack: string;
  readonly webhookUrl?: string | undefined;
  readonly recordKeyArn?: string | undefined;
  readonly recordPrefix?: string | undefined;
}

export interface Endpoints {
  readonly webhookBase: string;
  readonly recordPrefix: string;
  readonly recordKeyArn: string;
  readonly caPem: string | undefined;
}

/** The webhook's address, record prefix and key: from the flags, or the stack's outputs. */
export async function resolveEndpoints(
  target: AwsTarget,
  caBundleFile: string | undefined,
): Promise<Endpoints> {
  const caPem = caBundleFile ? await readCaBundle(caBundleFile) : undefined;
  if (target.webhookUrl) {
    if (!target.recordKeyArn)
      throw new InputError(
        "--webhook-url needs --record-key-arn (the stack's ClusterRecordKeyArn)",
      );
    return {
      webhookBase: target.webhookUrl,
      recordPrefix: target.recordPrefix ?? "ecr-anywhere/clusters/",
      recordKeyArn: target.recordKeyArn,
      caPem,
    };
  }
  const outputs = await readStackOutputs(target.stack);
  return {
    webhookBase: outputs.webhookUrl,
    recordPrefix: target.recordPrefix ?? outputs.recordPrefix,
    recordKeyArn: target.recordKeyArn ?? outputs.recordKeyArn,
    caPem,
  };
}

async function readCaBundle(file: string): Promise<string> {
  let text: string;
  try {
    text = (await readFile(file, "utf8")).trim();
  } catch {
    throw new InputError(`--ca-bundle ${file}: cannot read the file`);
  }
  // Accept PEM, or the base64 of a PEM as a webhook configuration's caBundle holds it.
  const pem = text.startsWith("-----BEGIN") ? text : Buffer.from(text, "base64").toString("utf8");
  if (!pem.includes("-----BEGIN CERTIFICATE-----"))
    throw new InputError(`--ca-bundle ${file}: expected a PEM certificate, or its base64`);
  return `${pem.trim()}\n`;
}
