/**
 * `ecr-anywhere put-record`: stores a record that `onboard --dry-run` rendered (GitOps), once the
 * refresher's token is filled in: the kubeconfig is sealed with the record key, the refresher's
 * item is written first and the webhook's after, as onboard does. Only what changed is written,
 * and the refresher's own state in a stored record is kept.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Command, Option } from "@commander-js/extra-typings";
import { type ClusterRecord, parseClusterRecord } from "../../functions/core/cluster-record.ts";
import { checkKubeconfig, parseKubeconfig } from "../../functions/core/kubeconfig.ts";
import { type RefresherNetworkMode, refresherRouteProblem } from "../../functions/core/network.ts";
import { InputError, parseClusterId, parseRefresherNetwork } from "../core/inputs.ts";
import { withRefresherState } from "../core/onboard-plan.ts";
import type { Factory } from "../factory.ts";
import { checked } from "../flags.ts";
import { Problem } from "../ui.ts";
import {
  REFRESHER_RECORD_FILE,
  REFRESHER_TOKEN_PLACEHOLDER,
  WEBHOOK_RECORD_FILE,
} from "./onboard/files.ts";

export interface PutRecordOptions {
  readonly clusterId: string;
  /** The directory `onboard --dry-run --out` wrote the record's two parts to. */
  readonly from: string;
  readonly stack: string;
  readonly recordKeyArn?: string | undefined;
  /** With --record-key-arn: the stack's RefresherNetwork (read from the stack otherwise). */
  readonly refresherNetwork?: RefresherNetworkMode | undefined;
}

export function newPutRecordCommand(factory: () => Factory) {
  return new Command("put-record")
    .description(
      "store a record onboard --dry-run rendered (GitOps): seal its kubeconfig with the record key, write the refresher's item, then the webhook's",
    )
    .argument("<cluster-id>", "the cluster", checked(parseClusterId))
    .requiredOption(
      "--from <dir>",
      `the --out directory of onboard --dry-run (${WEBHOOK_RECORD_FILE}, ${REFRESHER_RECORD_FILE})`,
    )
    .option(
      "--stack <name>",
      "CloudFormation stack whose outputs give the record key",
      "EcrAnywhere",
    )
    .option("--record-key-arn <arn>", "KMS key to seal the kubeconfig with (instead of --stack)")
    .addOption(
      new Option(
        "--refresher-network <mode>",
        "with --record-key-arn: the stack's RefresherNetwork output (public, static-egress or vpc), which decides the API server addresses the refresher can reach (default public); read from the stack otherwise",
      ).argParser(checked(parseRefresherNetwork)),
    )
    .action(async (clusterId, flags) => {
      await runPutRecord(
        {
          clusterId,
          from: flags.from,
          stack: flags.stack,
          recordKeyArn: flags.recordKeyArn,
          refresherNetwork: flags.refresherNetwork,
        },
        factory(),
      );
    });
}

export async function runPutRecord(options: PutRecordOptions, factory: Factory): Promise<void> {
  const record = await readRenderedRecord(options.from, options.clusterId, factory.localTestBed);
  const { keyArn, network } = await recordKeyAndNetwork(options, factory);
  // The same rule onboard applies to the address the refresher will use: a hand-edited record
  // must not name a server the refresher cannot reach.
  const server = refresherServer(record.kubeconfig);
  const routeProblem = factory.localTestBed ? undefined : refresherRouteProblem(server, network);
  if (routeProblem)
    throw new InputError(
      `--from ${options.from}: ${REFRESHER_RECORD_FILE}: the API server ${routeProblem} (docs/network.md)`,
    );
  const store = factory.recordStore();
  try {
    const problems = await store.problems(keyArn);
    if (problems.length > 0) throw new Problem(problems.join("; "));
    const existing = await store.read(options.clusterId);
    const outcome = await store.write(
      withRefresherState(record, existing?.record),
      keyArn,
      existing,
    );
    const where = store.locationOf(options.clusterId);
    factory.printer.result(
      { ok: true, clusterId: options.clusterId, outcome },
      () => `Record ${where}: ${outcome}.\n`,
    );
  } finally {
    store.close();
  }
}

/** The two parts as rendered, joined and checked as onboard checks a record it builds. */
export async function readRenderedRecord(
  dir: string,
  clusterId: string,
  localTestBed: boolean,
): Promise<ClusterRecord> {
  const webhook = await readJson(join(dir, WEBHOOK_RECORD_FILE));
  const refresher = await readJson(join(dir, REFRESHER_RECORD_FILE));
  const parsed = parseClusterRecord({ ...refresher, ...webhook }, clusterId);
  if (!parsed.ok) throw new InputError(`--from ${dir}: the record is invalid: ${parsed.error}`);
  if (parsed.value.kubeconfig.includes(REFRESHER_TOKEN_PLACEHOLDER))
    throw new InputError(
      `--from ${dir}: replace ${REFRESHER_TOKEN_PLACEHOLDER} in ${REFRESHER_RECORD_FILE}'s kubeconfig with the refresher's token first (the note of onboard --dry-run says how)`,
    );
  const kubeconfig = checkKubeconfig(parsed.value.kubeconfig, {
    allowLocalServers: localTestBed,
  });
  if (!kubeconfig.ok)
    throw new InputError(`--from ${dir}: ${REFRESHER_RECORD_FILE}: ${kubeconfig.error}`);
  return parsed.value;
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    throw new InputError(`--from: cannot read ${file}`);
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // Said below, without echoing the content (it holds a token).
  }
  throw new InputError(`--from: ${file} is not a JSON object`);
}

/**
 * The record key and the refresher's network: given, or from a stack that keeps records where
 * this command writes them.
 */
async function recordKeyAndNetwork(
  options: PutRecordOptions,
  factory: Factory,
): Promise<{ keyArn: string; network: RefresherNetworkMode }> {
  if (options.recordKeyArn !== undefined)
    return { keyArn: options.recordKeyArn, network: options.refresherNetwork ?? "public" };
  if (options.refresherNetwork !== undefined)
    throw new InputError(
      "--refresher-network goes with --record-key-arn; with --stack it is read from the stack",
    );
  const outputs = await factory.stackOutputs(options.stack);
  if (outputs.records !== factory.records)
    throw new InputError(
      `--records: stack ${options.stack} keeps cluster records in the tables of records name ${outputs.records}, not ${factory.records}; pass --records ${outputs.records}`,
    );
  return { keyArn: outputs.recordKeyArn, network: outputs.refresherNetwork };
}

/** The server of the kubeconfig's current context (checkKubeconfig has accepted it already). */
function refresherServer(kubeconfig: string): string {
  const parsed = parseKubeconfig(kubeconfig);
  if (!parsed.ok) throw new InputError(parsed.error);
  const { clusters, contexts, currentContext } = parsed.value;
  const context = contexts.find((candidate) => candidate.name === currentContext);
  const cluster = clusters.find((candidate) => candidate.name === context?.cluster);
  return cluster?.server ?? clusters[0]?.server ?? "";
}
