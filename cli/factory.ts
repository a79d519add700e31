/**
 * Where every command gets what it talks to, as kubectl's `cmdutil.Factory` does: the operator's
 * cluster (from `--kubeconfig`/`--context`), AWS (clients with `--region`/`--profile`), a record's
 * own cluster, the printer chosen once from `--output`, the terminal. Commands never build an
 * adapter themselves, so a test hands in stand-ins through `buildProgram(makeFactory)`.
 */
import { ClusterApi } from "../functions/adapters/kubernetes.ts";
import { ENV } from "../functions/core/config.ts";
import {
  type ContractNames,
  contractNames,
  DEFAULT_LABEL_PREFIX,
  DEFAULT_RECORDS_NAME,
} from "../functions/core/contract.ts";
import {
  type AwsClientConfig,
  RecordStore,
  readStackOutputs,
  type StackOutputs,
} from "./adapters/aws.ts";
import { AwsAccount } from "./adapters/aws-account.ts";
import { invokeRefresher, type RefresherReport } from "./adapters/refresher-function.ts";
import { UserCluster } from "./adapters/user-cluster.ts";
import { probeHealth } from "./adapters/webhook-health.ts";
import type { HealthProbe } from "./core/findings.ts";
import { regionChoice } from "./core/regions.ts";
import { confirm, type OutputFormat, type Printer, printerFor } from "./ui.ts";

/** The flags every command has, as the root command parsed them. */
export interface GlobalFlags {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  readonly output: OutputFormat;
  readonly labelPrefix?: string | undefined;
  readonly records?: string | undefined;
  readonly region?: string | undefined;
  readonly profile?: string | undefined;
}

/** The record store's surface the commands use: the DynamoDB adapter, or a stand-in. */
export type Records = Pick<
  RecordStore,
  | "locationOf"
  | "problems"
  | "read"
  | "readWebhookPart"
  | "readRefresherPart"
  | "write"
  | "replaceTokenHashes"
  | "scheduleDeletion"
  | "clusterIds"
  | "close"
>;

/** The operator's cluster's surface the commands use. */
export type OperatorCluster = Pick<
  UserCluster,
  | "config"
  | "server"
  | "caData"
  | "deniedAccess"
  | "missingNamespaces"
  | "read"
  | "apply"
  | "remove"
  | "webhookConfigurations"
  | "namespacesWith"
  | "roleBindingsWith"
  | "requestToken"
  | "dryRunManagedSecret"
  | "serverVersion"
>;

/** A cluster reached with a record's kubeconfig (the refresher's view). */
export type RecordCluster = Pick<ClusterApi, "enabledNamespaces" | "managedSecrets">;

export interface Factory {
  /** Output format, prefix, records name and names: the same defaults for every command. */
  readonly output: OutputFormat;
  readonly labelPrefix: string;
  /** The records name N: tables `<N>-webhook` and `<N>-refresher`. */
  readonly records: string;
  readonly names: ContractNames;
  /**
   * The local test bed's allowance (`ECR_ANYWHERE_ALLOW_LOCAL_API_SERVERS=true`): API servers and
   * webhook callers on loopback or private addresses, which no real cluster has.
   */
  readonly localTestBed: boolean;
  readonly printer: Printer;
  /**
   * The arguments the command was given (after the program's name), for the command that finishes
   * an interrupted run; commands fall back to their own name and operands without it.
   */
  readonly invocation?: readonly string[] | undefined;
  /** The operator's cluster; loading it checks the kubeconfig and context (exit 2 when wrong). */
  operatorCluster(): OperatorCluster;
  recordStore(): Records;
  stackOutputs(stack: string): Promise<StackOutputs>;
  /** Read-only facts of the AWS account (preflight, doctor). */
  awsAccount(): Pick<
    AwsAccount,
    | "callerIdentity"
    | "location"
    | "stack"
    | "stackResources"
    | "lambdaConcurrency"
    | "table"
    | "kmsReachable"
    | "stackAlarms"
    | "countLiveRecords"
  >;
  /** Calls a deployed webhook's health path, plainly or with an Authorization header. */
  webhookHealth(
    webhookUrl: string,
    form: "path" | "header",
    timeoutMs: number,
  ): Promise<HealthProbe>;
  recordCluster(kubeconfig: string, signal: AbortSignal): RecordCluster;
  /** Asks the deployed refresher to refresh one cluster, and returns what it saw. */
  refreshOneCluster(functionName: string, clusterId: string): Promise<RefresherReport>;
  confirm(question: string): Promise<boolean>;
  sleep(ms: number): Promise<void>;
}

export type MakeFactory = (globals: GlobalFlags) => Factory;

/** The real adapters. */
export const defaultFactory: MakeFactory = (globals) => {
  const region = regionChoice(globals.region, process.env);
  if (region.warning) process.stderr.write(`ecr-anywhere: warning: ${region.warning}\n`);
  const aws: AwsClientConfig = {
    ...(globals.region ? { region: globals.region } : {}),
    ...(globals.profile ? { profile: globals.profile } : {}),
  };
  const labelPrefix = globals.labelPrefix ?? DEFAULT_LABEL_PREFIX;
  const records = globals.records ?? DEFAULT_RECORDS_NAME;
  let cluster: UserCluster | undefined;
  return {
    output: globals.output,
    labelPrefix,
    records,
    names: contractNames(labelPrefix),
    localTestBed: process.env[ENV.allowLocalApiServers] === "true",
    printer: printerFor(globals.output, process),
    // The entry point parses process.argv: what the user typed is exactly this.
    invocation: process.argv.slice(2),
    operatorCluster: () => {
      cluster ??= UserCluster.load({ kubeconfig: globals.kubeconfig, context: globals.context });
      return cluster;
    },
    recordStore: () => new RecordStore(records, aws),
    stackOutputs: (stack) => readStackOutputs(stack, aws),
    awsAccount: () => new AwsAccount(aws),
    webhookHealth: probeHealth,
    recordCluster: (kubeconfig, signal) => new ClusterApi(kubeconfig, signal),
    refreshOneCluster: (functionName, clusterId) => invokeRefresher(functionName, clusterId, aws),
    confirm,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
};
