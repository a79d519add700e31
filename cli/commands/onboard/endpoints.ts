/** Where onboarding writes and points: the webhook URL, records name and key, from flags or the stack. */
import { readFile } from "node:fs/promises";
import type { RefresherNetworkMode } from "../../../functions/core/network.ts";
import { InputError } from "../../core/inputs.ts";
import type { Factory } from "../../factory.ts";

export interface AwsTarget {
  readonly stack: string;
  readonly webhookUrl?: string | undefined;
  readonly recordKeyArn?: string | undefined;
  /** `--refresher-network`: the stack's mode where the stack is not read (`--webhook-url`). */
  readonly refresherNetwork?: RefresherNetworkMode | undefined;
  /** `--allowed-registries`: the stack's list where the stack is not read (`--webhook-url`). */
  readonly allowedRegistries?: readonly string[] | undefined;
  /** `--refresher-function`: the refresher to check with, where the stack is not read. */
  readonly refresherFunction?: string | undefined;
  /** `--skip-refresher-check`: no refresher function is needed. */
  readonly skipRefresherCheck: boolean;
}

export interface Endpoints {
  readonly webhookBase: string;
  /** The records name N of the tables `<N>-webhook` and `<N>-refresher`. */
  readonly records: string;
  readonly recordKeyArn: string;
  readonly caPem: string | undefined;
  /** Where the refresher connects to the API server from: decides which addresses it can reach. */
  readonly refresherNetwork: RefresherNetworkMode;
  /** The stack's `allowedRegistries`: every `--registries` host must lie within them. */
  readonly allowedRegistries: readonly string[];
  /** The deployed refresher onboard asks to refresh the cluster; undefined with the check skipped. */
  readonly refresherFunction: string | undefined;
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
    // Without the stack nothing else says what its tokens may pull: a guess would let a host
    // outside it onboard cleanly and fail at the first image pull.
    if (!target.allowedRegistries)
      throw new InputError(
        "--webhook-url needs --allowed-registries (the stack's AllowedRegistries output), so --registries can be checked against what its tokens may pull",
      );
    return {
      webhookBase: target.webhookUrl,
      records,
      recordKeyArn: target.recordKeyArn,
      caPem,
      // Without the stack, the safe assumption: Lambda's own network, public addresses only.
      refresherNetwork: target.refresherNetwork ?? "public",
      allowedRegistries: target.allowedRegistries,
      refresherFunction: target.skipRefresherCheck ? undefined : target.refresherFunction,
    };
  }
  const outputs = await factory.stackOutputs(target.stack);
  if (outputs.records !== records)
    throw new InputError(
      `--records: stack ${target.stack} keeps cluster records in the tables of records name ${outputs.records}, not ${records}; pass --records ${outputs.records} (to every command)`,
    );
  if (target.refresherNetwork && target.refresherNetwork !== outputs.refresherNetwork)
    throw new InputError(
      `--refresher-network ${target.refresherNetwork}: stack ${target.stack} runs its refresher in network ${outputs.refresherNetwork}; leave the flag out when the stack is read`,
    );
  for (const [flag, value] of [
    ["--allowed-registries", target.allowedRegistries],
    ["--refresher-function", target.refresherFunction],
  ] as const)
    if (value)
      throw new InputError(`${flag} goes with --webhook-url: with --stack the stack's outputs say`);
  return {
    webhookBase: outputs.webhookUrl,
    records,
    recordKeyArn: target.recordKeyArn ?? outputs.recordKeyArn,
    caPem,
    refresherNetwork: outputs.refresherNetwork,
    allowedRegistries: stackOutput(target.stack, "AllowedRegistries", outputs.allowedRegistries),
    refresherFunction: target.skipRefresherCheck
      ? undefined
      : stackOutput(target.stack, "RefresherFunctionName", outputs.refresherFunction),
  };
}

/** An output stacks deployed by an older ecr-anywhere lack: deploying it again adds it. */
function stackOutput<T>(stack: string, output: string, value: T | undefined): T {
  if (value === undefined)
    throw new InputError(
      `stack ${stack} has no output ${output}: it was deployed by an older ecr-anywhere; deploy it again with this version${output === "RefresherFunctionName" ? ", or pass --skip-refresher-check" : ""}`,
    );
  return value;
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
