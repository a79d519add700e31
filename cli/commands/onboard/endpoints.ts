/** Where onboarding writes and points: the webhook URL, records name and key, from flags or the stack. */
import { readFile } from "node:fs/promises";
import { InputError } from "../../core/inputs.ts";
import type { Factory } from "../../factory.ts";

export interface AwsTarget {
  readonly stack: string;
  readonly webhookUrl?: string | undefined;
  readonly recordKeyArn?: string | undefined;
}

export interface Endpoints {
  readonly webhookBase: string;
  /** The records name N of the tables `<N>-webhook` and `<N>-refresher`. */
  readonly records: string;
  readonly recordKeyArn: string;
  readonly caPem: string | undefined;
}

/**
 * The webhook's address and the record key: from the flags, or the stack's outputs. The records
 * name is the one every command uses (`--records`, or the default); a stack that reads records
 * from other tables is refused, since a record written here would never be found.
 */
export async function resolveEndpoints(
  target: AwsTarget,
  caBundleFile: string | undefined,
  factory: Pick<Factory, "records" | "stackOutputs">,
): Promise<Endpoints> {
  const caPem = caBundleFile ? await readCaBundle(caBundleFile) : undefined;
  const records = factory.records;
  if (target.webhookUrl) {
    if (!target.recordKeyArn)
      throw new InputError(
        "--webhook-url needs --record-key-arn (the stack's ClusterRecordKeyArn)",
      );
    return { webhookBase: target.webhookUrl, records, recordKeyArn: target.recordKeyArn, caPem };
  }
  const outputs = await factory.stackOutputs(target.stack);
  if (outputs.records !== records)
    throw new InputError(
      `--records: stack ${target.stack} keeps cluster records in the tables of records name ${outputs.records}, not ${records}; pass --records ${outputs.records} (to every command)`,
    );
  return {
    webhookBase: outputs.webhookUrl,
    records,
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
