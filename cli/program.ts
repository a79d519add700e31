/**
 * The `ecr-anywhere` command line: flags parsed and checked by commander with the checks in
 * core/inputs.ts, each command in commands/. Exit codes: 0 ok, 1 a problem found, 2 usage.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_CLUSTER_RECORD_PREFIX } from "../functions/core/contract.ts";
import { offboard } from "./commands/offboard.ts";
import { onboard } from "./commands/onboard.ts";
import { rotateToken } from "./commands/rotate-token.ts";
import { status } from "./commands/status.ts";
import {
  InputError,
  parseCidrs,
  parseClusterId,
  parseHttpsUrl,
  parseNamespaces,
  parseRecoveryDays,
  parseRegistries,
  parseRepositories,
  parseRoleArn,
  parseSeconds,
  parseSecretName,
  parseServiceAccounts,
  parseWebhookAuth,
} from "./core/inputs.ts";
import type { OutputFormat } from "./ui.ts";

/** Adapts a core/inputs.ts check to commander, which names the flag in its message. */
function checked<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (error) {
      if (error instanceof InputError) throw new InvalidArgumentError(error.message);
      throw error;
    }
  };
}

interface GlobalOptions {
  kubeconfig?: string;
  context?: string;
  output: OutputFormat;
  labelPrefix?: string;
  recordPrefix?: string;
}

export function buildProgram(): Command {
  const program = new Command("ecr-anywhere")
    .description(
      "Fresh Amazon ECR pull credentials for any Kubernetes cluster: onboard clusters, rotate their webhook tokens, see their state.",
    )
    .showHelpAfterError("(add --help for usage)")
    .exitOverride()
    .addOption(
      new Option(
        "--kubeconfig <file>",
        "kubeconfig of the cluster (default: KUBECONFIG, then ~/.kube/config)",
      ),
    )
    .addOption(
      new Option("--context <name>", "kubeconfig context to use (default: its current-context)"),
    )
    .addOption(
      new Option("-o, --output <format>", "text for people, json for scripts")
        .choices(["text", "json"])
        .default("text"),
    )
    .addOption(
      new Option(
        "--label-prefix <prefix>",
        "prefix of labels and annotations (the stack's labelPrefix)",
      ).default(undefined, "ecr-anywhere.centml.ai"),
    )
    .addOption(
      new Option(
        "--record-prefix <prefix>",
        "Secrets Manager name prefix of cluster records",
      ).default(undefined, DEFAULT_CLUSTER_RECORD_PREFIX),
    );
  const globals = (command: Command) => command.optsWithGlobals<GlobalOptions>();
  const kube = (options: GlobalOptions) => ({
    kubeconfig: options.kubeconfig,
    context: options.context,
  });

  program
    .command("onboard")
    .description(
      "register a cluster: RBAC, refresher credentials, cluster record, webhook configuration, then verify the round trip",
    )
    .argument(
      "<cluster-id>",
      "a DNS-1123 label naming the cluster (e.g. gke-prod)",
      checked(parseClusterId),
    )
    .requiredOption(
      "--registries <hosts>",
      "comma-separated ECR registry hosts the cluster may use",
      checked(parseRegistries),
    )
    .requiredOption(
      "--namespaces <names>",
      "comma-separated existing namespaces to enable",
      checked(parseNamespaces),
    )
    .option(
      "--stack <name>",
      "CloudFormation stack whose outputs give the webhook URL, record prefix and key",
      "EcrAnywhere",
    )
    .option(
      "--webhook-url <url>",
      "the webhook's base URL (instead of --stack)",
      checked(parseHttpsUrl),
    )
    .option("--record-key-arn <arn>", "KMS key for the cluster record (instead of --stack)")
    .option(
      "--ca-bundle <file>",
      "CA of the webhook's certificate, PEM or base64 (only for a webhook that is not a Lambda function URL)",
    )
    .option(
      "--role-arn <arn>",
      "IAM role the webhook assumes to mint this cluster's tokens",
      checked(parseRoleArn),
    )
    .option(
      "--repositories <arns>",
      "comma-separated ECR repository ARNs (wildcards allowed) the tokens may pull",
      checked(parseRepositories),
    )
    .option(
      "--allowed-source-cidrs <cidrs>",
      "comma-separated CIDRs the API server calls the webhook from",
      checked(parseCidrs),
    )
    .option(
      "--allow-any-source",
      "accept calls with this cluster's URL token from any address (instead of --allowed-source-cidrs); see the README's security model",
      false,
    )
    .option(
      "--pull-through-cache",
      "with --repositories: the cluster's tokens may import through pull-through cache rules (the stack needs pullThroughCache too)",
      false,
    )
    .option(
      "--ensure-secret <name>",
      "have the refresher create this managed Secret in every listed namespace",
      checked(parseSecretName),
    )
    .option(
      "--service-accounts <names>",
      "with --ensure-secret: add it to these ServiceAccounts' imagePullSecrets",
      checked(parseServiceAccounts),
    )
    .option(
      "--api-server-url <url>",
      "the API server address Lambda must use, when the kubeconfig's is private or local",
      checked(parseHttpsUrl),
    )
    .option(
      "--rotate-token",
      "replace the webhook token at once (a leaked token); for routine rotation use rotate-token",
      false,
    )
    .option(
      "--replace-existing",
      "replace an in-cluster ECR Anywhere webhook for the same labels",
      false,
    )
    .option(
      "--dry-run",
      "change nothing: write the manifests and the record instead (GitOps)",
      false,
    )
    .option(
      "--webhook-auth <mode>",
      "url: the token is in the webhook URL (managed control planes); header: kube-apiserver sends it from an admission kubeconfig, and the URL carries no secret (API servers you configure; with --dry-run)",
      checked(parseWebhookAuth),
      "url",
    )
    .option(
      "--admission-kubeconfig-path <path>",
      "with --webhook-auth header: where the credentials kubeconfig will be on the API server's host",
      "/etc/kubernetes/ecr-anywhere/webhook-credentials.kubeconfig",
    )
    .option("--out <dir>", "with --dry-run: write files here instead of stdout")
    .option(
      "--verify-timeout <seconds>",
      "how long to wait for the round trip",
      checked(parseSeconds),
      90,
    )
    .action(async (clusterId: string, options, command: Command) => {
      const global = globals(command);
      if (options.serviceAccounts && !options.ensureSecret)
        throw new InputError(
          "--service-accounts needs --ensure-secret (the Secret to add to them)",
        );
      if (options.repositories && !options.roleArn)
        throw new InputError(
          "--repositories needs --role-arn: the session policy narrows an assumed role, and without one nothing would be narrowed",
        );
      if (options.pullThroughCache && !options.repositories)
        throw new InputError(
          "--pull-through-cache needs --repositories and --role-arn (otherwise the stack's pullThroughCache setting applies)",
        );
      if (options.allowAnySource && options.allowedSourceCidrs)
        throw new InputError("--allow-any-source and --allowed-source-cidrs exclude each other");
      // The default path: a token in the URL is pinned to the control plane's egress addresses.
      if (options.webhookAuth === "url" && !options.allowedSourceCidrs && !options.allowAnySource)
        throw new InputError(
          "--allowed-source-cidrs is needed with a token in the webhook URL: kube-apiserver shows that URL, token included, to users whose writes fail in transit, and pinned to your control plane's egress addresses a leaked token is useless elsewhere (GKE: the cluster's NAT/egress IPs; AKS: az aks show --query networkProfile.loadBalancerProfile.effectiveOutboundIPs). Or use --webhook-auth header (API servers you configure), or --allow-any-source to accept the exposure",
        );
      if (options.out && !options.dryRun) throw new InputError("--out goes with --dry-run");
      if (options.webhookAuth === "header" && !options.dryRun)
        throw new InputError(
          "--webhook-auth header needs --dry-run: kube-apiserver must be given the credentials before the webhook configuration is applied (install the files it writes, restart the API server, then apply the manifests)",
        );
      await onboard({
        clusterId,
        registries: options.registries,
        namespaces: options.namespaces,
        roleArn: options.roleArn,
        repositories: options.repositories,
        allowedSourceCidrs: options.allowedSourceCidrs,
        ensureSecret: options.ensureSecret,
        pullThroughCache: options.pullThroughCache,
        serviceAccounts: options.serviceAccounts,
        aws: {
          stack: options.stack,
          webhookUrl: options.webhookUrl,
          recordKeyArn: options.recordKeyArn,
          recordPrefix: global.recordPrefix,
        },
        kube: kube(global),
        caBundleFile: options.caBundle,
        apiServerUrl: options.apiServerUrl,
        labelPrefix: global.labelPrefix,
        rotateToken: options.rotateToken,
        replaceExisting: options.replaceExisting,
        dryRun: options.dryRun,
        webhookAuth: options.webhookAuth,
        admissionKubeconfigPath: options.admissionKubeconfigPath,
        out: options.out,
        verifyTimeoutSeconds: options.verifyTimeout,
        output: global.output,
      });
    });

  program
    .command("rotate-token")
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
    .action(async (clusterId: string, options, command: Command) => {
      const global = globals(command);
      await rotateToken({
        clusterId,
        recordPrefix: global.recordPrefix ?? DEFAULT_CLUSTER_RECORD_PREFIX,
        kube: kube(global),
        labelPrefix: global.labelPrefix,
        propagationSeconds: options.propagationSeconds,
        verifyTimeoutSeconds: options.verifyTimeout,
        output: global.output,
      });
    });

  program
    .command("status")
    .description(
      "each registered cluster through its record's kubeconfig: reachable, namespaces, managed and stale Secrets; exit 1 on any problem",
    )
    .argument("[cluster-id...]", "clusters to show (default: every record)")
    .option(
      "--refresh-before <seconds>",
      "the refresher's refreshBefore (the stack's refreshBeforeHours)",
      checked(parseSeconds),
      21_600,
    )
    .option("--timeout <seconds>", "per cluster", checked(parseSeconds), 20)
    .action(async (clusterIds: string[], options, command: Command) => {
      const global = globals(command);
      await status({
        clusterIds: clusterIds.map(checked(parseClusterId)),
        recordPrefix: global.recordPrefix ?? DEFAULT_CLUSTER_RECORD_PREFIX,
        labelPrefix: global.labelPrefix,
        refreshBeforeSeconds: options.refreshBefore,
        timeoutSeconds: options.timeout,
        output: global.output,
      });
    });

  program
    .command("offboard")
    .description(
      "remove a cluster's webhook configuration, RBAC and record; its Secrets are left alone",
    )
    .argument("<cluster-id>", "the cluster", checked(parseClusterId))
    .option("-y, --yes", "do not ask for confirmation", false)
    .option(
      "--recovery-window-days <days>",
      "Secrets Manager keeps the record this long (7 to 30)",
      checked(parseRecoveryDays),
      30,
    )
    .action(async (clusterId: string, options, command: Command) => {
      const global = globals(command);
      await offboard({
        clusterId,
        recordPrefix: global.recordPrefix ?? DEFAULT_CLUSTER_RECORD_PREFIX,
        kube: kube(global),
        labelPrefix: global.labelPrefix,
        recoveryDays: options.recoveryWindowDays,
        yes: options.yes,
        output: global.output,
      });
    });
  return program;
}
