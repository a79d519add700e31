/**
 * `ecr-anywhere onboard`: registers one cluster end to end. Flags are completed into options,
 * validated together, then one run plans the refresher's objects, the webhook token, the record
 * and the webhook configuration and hands each to a target: the cluster and AWS, or files
 * (`--dry-run`).
 */
import { Command, Option, type OptionValues } from "@commander-js/extra-typings";
import type { KubernetesObject } from "@kubernetes/client-node";
import { apiServerRouteProblem } from "../core/api-server-route.ts";
import { nonPublicCidrs } from "../core/cidrs.ts";
import { finishingCommand } from "../core/cluster-plan.ts";
import {
  InputError,
  parseCidrs,
  parseClusterId,
  parseFunctionName,
  parseHostPath,
  parseHttpsUrl,
  parseNamespaces,
  parseRefresherNetwork,
  parseRegistries,
  parseRepositories,
  parseRoleArn,
  parseSeconds,
  parseSecretName,
  parseServiceAccounts,
  parseWebhookAuth,
} from "../core/inputs.ts";
import {
  buildClusterRecord,
  DRY_RUN_STEPS,
  enabledNamespaceLabel,
  ONBOARD_STEPS,
  registriesOutsideStack,
  registryPartitionProblems,
  webhookUrl,
} from "../core/onboard-plan.ts";
import type { Factory } from "../factory.ts";
import { checked } from "../flags.ts";
import { need, redact, type Step } from "../ui.ts";
import { ourWebhookConfiguration, refresherObjects } from "./cluster-objects.ts";
import { ClusterTarget } from "./onboard/apply.ts";
import { resolveEndpoints } from "./onboard/endpoints.ts";
import { FilesTarget } from "./onboard/files.ts";
import { refresherCheckStep } from "./onboard/refresher-check.ts";
import type {
  OnboardOptions,
  OnboardState,
  OnboardTarget,
  WantedObjects,
} from "./onboard/target.ts";
import { interruption } from "./plan-run.ts";

export type { OnboardOptions } from "./onboard/target.ts";

function defineFlags() {
  const command = new Command("onboard")
    .description(
      "register a cluster: RBAC, refresher credentials, cluster record, webhook configuration, then verify the round trip",
    )
    .argument(
      "<cluster-id>",
      "a DNS-1123 label naming the cluster (e.g. gke-prod)",
      checked(parseClusterId),
    );
  return runFlags(authFlags(targetFlags(grantFlags(command))));
}

/** What the cluster may pull, and what the refresher keeps for it. */
// biome-ignore lint/suspicious/noExplicitAny: commander's own constraint on argument tuples.
function grantFlags<A extends any[], O extends OptionValues>(command: Command<A, O>) {
  return command
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
      "--role-arn <arn>",
      "IAM role the webhook assumes to mint this cluster's tokens",
      checked(parseRoleArn),
    )
    .option(
      "--repositories <arns>",
      "comma-separated ECR repository ARNs (wildcards allowed): the tokens may pull only these, instead of every repository of --registries",
      checked(parseRepositories),
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
    );
}

/** Where the stack and the API server are. */
// biome-ignore lint/suspicious/noExplicitAny: commander's own constraint on argument tuples.
function targetFlags<A extends any[], O extends OptionValues>(command: Command<A, O>) {
  return command
    .option(
      "--stack <name>",
      "CloudFormation stack whose outputs give the webhook URL and record key",
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
      "--api-server-url <url>",
      "the API server address the refresher (Lambda) will use, when the kubeconfig's is local or private (see docs/network.md)",
      checked(parseHttpsUrl),
    )
    .addOption(
      new Option(
        "--refresher-network <mode>",
        "with --webhook-url: the stack's RefresherNetwork output (public, static-egress or vpc), which decides the API server addresses the refresher can reach; read from the stack otherwise",
      ).argParser(checked(parseRefresherNetwork)),
    )
    .option(
      "--allowed-registries <hosts>",
      "with --webhook-url: the stack's AllowedRegistries output, which every --registries host must lie within; read from the stack otherwise",
      checked(parseRegistries),
    )
    .option(
      "--refresher-function <name>",
      "with --webhook-url: the stack's RefresherFunctionName output (or the function's ARN), which onboard asks to refresh the cluster; read from the stack otherwise",
      checked(parseFunctionName),
    );
}

/** How the API server proves it is this cluster. */
// biome-ignore lint/suspicious/noExplicitAny: commander's own constraint on argument tuples.
function authFlags<A extends any[], O extends OptionValues>(command: Command<A, O>) {
  return command
    .option(
      "--allowed-source-cidrs <cidrs>",
      "comma-separated CIDRs the API server calls the webhook from",
      checked(parseCidrs),
    )
    .option(
      "--allow-any-source",
      "accept calls with this cluster's URL token from any address (instead of --allowed-source-cidrs); see docs/security.md",
      false,
    )
    .addOption(
      new Option(
        "--webhook-auth <mode>",
        "url: the token is in the webhook URL (managed control planes); header: kube-apiserver sends it from an admission kubeconfig, and the URL carries no secret (API servers you configure; with --dry-run)",
      )
        .argParser(checked(parseWebhookAuth))
        .default("url" as const),
    )
    .option(
      "--admission-kubeconfig-path <path>",
      "with --webhook-auth header: where the credentials kubeconfig will be on the API server's host (absolute)",
      checked(parseHostPath),
      "/etc/kubernetes/ecr-anywhere/webhook-credentials.kubeconfig",
    )
    .option(
      "--admission-config <file>",
      "with --webhook-auth header: the API server's current --admission-control-config-file (RKE2, CIS-hardened k3s: PodSecurity); the rendered one is a merge that keeps its other plugins",
    );
}

/** How this run behaves. */
// biome-ignore lint/suspicious/noExplicitAny: commander's own constraint on argument tuples.
function runFlags<A extends any[], O extends OptionValues>(command: Command<A, O>) {
  return command
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
    .option("--out <dir>", "with --dry-run: write files here instead of stdout")
    .option(
      "--token-file <path>",
      "with --dry-run: reuse the webhook token in this file, or make one and keep it there (0600), so renders are reproducible",
    )
    .option(
      "--skip-refresher-check",
      "do not ask the deployed refresher to refresh the cluster at the end (for a role that may not lambda:InvokeFunction it); its first scheduled run is then the first proof it reaches the API server",
      false,
    )
    .option(
      "--verify-timeout <seconds>",
      "how long to wait for the round trip",
      checked(parseSeconds),
      90,
    );
}

type OnboardFlags = ReturnType<ReturnType<typeof defineFlags>["opts"]>;

export function newOnboardCommand(factory: () => Factory) {
  return defineFlags().action(async (clusterId, flags) => {
    const made = factory();
    const options = completeOnboard(clusterId, flags, made.localTestBed);
    validateOnboard(options);
    await runOnboard(options, made);
  });
}

/** The flags as options: every field named once, so a misspelt one does not compile. */
export function completeOnboard(
  clusterId: string,
  flags: OnboardFlags,
  localTestBed: boolean,
): OnboardOptions {
  return {
    clusterId,
    registries: flags.registries,
    namespaces: flags.namespaces,
    roleArn: flags.roleArn,
    repositories: flags.repositories,
    allowedSourceCidrs: flags.allowedSourceCidrs,
    allowAnySource: flags.allowAnySource,
    // The local test bed's API server calls from loopback, which no real cluster's does.
    allowPrivateSources: localTestBed,
    ensureSecret: flags.ensureSecret,
    pullThroughCache: flags.pullThroughCache,
    serviceAccounts: flags.serviceAccounts,
    aws: {
      stack: flags.stack,
      webhookUrl: flags.webhookUrl,
      recordKeyArn: flags.recordKeyArn,
      refresherNetwork: flags.refresherNetwork,
      allowedRegistries: flags.allowedRegistries,
      refresherFunction: flags.refresherFunction,
      skipRefresherCheck: flags.skipRefresherCheck,
    },
    caBundleFile: flags.caBundle,
    apiServerUrl: flags.apiServerUrl,
    rotateToken: flags.rotateToken,
    replaceExisting: flags.replaceExisting,
    dryRun: flags.dryRun,
    webhookAuth: flags.webhookAuth,
    admissionKubeconfigPath: flags.admissionKubeconfigPath,
    admissionConfigFile: flags.admissionConfig,
    tokenFile: flags.tokenFile,
    out: flags.out,
    verifyTimeoutSeconds: flags.verifyTimeout,
  };
}

/** The rules between flags, before anything is read or changed (exit 2). */
export function validateOnboard(options: OnboardOptions): void {
  if (options.serviceAccounts && !options.ensureSecret)
    throw new InputError("--service-accounts needs --ensure-secret (the Secret to add to them)");
  if (options.pullThroughCache && !options.repositories)
    throw new InputError(
      "--pull-through-cache needs --repositories (without them the cluster inherits the stack's pullThroughCache setting)",
    );
  if (options.allowAnySource && options.allowedSourceCidrs)
    throw new InputError("--allow-any-source and --allowed-source-cidrs exclude each other");
  // A function URL sees only public sources; a webhook of your own (--ca-bundle) may see others.
  const hidden = nonPublicCidrs(options.allowedSourceCidrs ?? []);
  if (hidden.length > 0 && !options.caBundleFile && !options.allowPrivateSources)
    throw new InputError(
      `--allowed-source-cidrs: ${hidden.join(", ")} ${hidden.length === 1 ? "reaches" : "reach"} into private, shared, loopback, link-local or reserved ranges, and a Lambda function URL only ever sees public source addresses: give your API server's public egress (NAT) addresses`,
    );
  // The default path: a token in the URL is pinned to the control plane's egress addresses.
  if (options.webhookAuth === "url" && !options.allowedSourceCidrs && !options.allowAnySource)
    throw new InputError(
      "--allowed-source-cidrs is needed with a token in the webhook URL: kube-apiserver shows that URL, token included, to users whose writes fail in transit, and pinned to your control plane's egress addresses a leaked token is useless elsewhere (GKE: the cluster's NAT/egress IPs; AKS: az aks show --query networkProfile.loadBalancerProfile.effectiveOutboundIPs). Or use --webhook-auth header (API servers you configure), or --allow-any-source to accept the exposure",
    );
  if (
    options.aws.webhookUrl &&
    !options.dryRun &&
    !options.aws.refresherFunction &&
    !options.aws.skipRefresherCheck
  )
    throw new InputError(
      "--webhook-url needs --refresher-function (the stack's RefresherFunctionName output), which onboard asks to refresh the cluster, or --skip-refresher-check",
    );
  if (options.out && !options.dryRun) throw new InputError("--out goes with --dry-run");
  if (options.tokenFile && !options.dryRun)
    throw new InputError(
      "--token-file goes with --dry-run (onboard itself keeps the token of the cluster's webhook configuration)",
    );
  if (options.admissionConfigFile && options.webhookAuth !== "header")
    throw new InputError("--admission-config goes with --webhook-auth header");
  if (options.webhookAuth === "header" && !options.dryRun)
    throw new InputError(
      "--webhook-auth header needs --dry-run: kube-apiserver must be given the credentials before the webhook configuration is applied (install the files it writes, restart the API server, then apply the manifests)",
    );
}

export async function runOnboard(options: OnboardOptions, factory: Factory): Promise<void> {
  const target: OnboardTarget = options.dryRun
    ? new FilesTarget(options, factory.printer)
    : new ClusterTarget(options, factory);
  const state: OnboardState = {};
  try {
    const done = await factory.printer.steps(
      state,
      onboardSteps(options, factory, target),
      options.dryRun,
    );
    await target.report(state, done);
  } catch (error) {
    // The same command finishes the job: every step plans and applies idempotently.
    throw interruption(error, target.run, () =>
      finishingCommand(factory.invocation ?? ["onboard", options.clusterId], {
        context: state.cluster?.config.currentContext,
      }),
    );
  } finally {
    target.close();
  }
}

/**
 * The inputs that depend on the stack: the registries must be in the key's partition, and the
 * record's address is what Lambda will use, refused now rather than by the refresher later.
 */
function checkAgainstStack(state: OnboardState, options: OnboardOptions, factory: Factory): void {
  const endpoints = need(state.endpoints);
  const outside = registryPartitionProblems(options.registries, endpoints.recordKeyArn);
  if (outside.length > 0) throw new InputError(`--registries: ${outside.join("; ")}`);
  const ungranted = registriesOutsideStack(options, endpoints.allowedRegistries);
  if (ungranted.length > 0)
    throw new InputError(
      `${ungranted.join("; ")}: its tokens could never pull from there. Add the registry to the stack's allowedRegistries and deploy, or leave it out`,
    );
  const problem = apiServerRouteProblem({
    kubeconfigServer: need(state.cluster).server,
    apiServerUrl: options.apiServerUrl,
    network: endpoints.refresherNetwork,
    localTestBed: factory.localTestBed,
  });
  if (problem) throw new InputError(problem);
}

/** The run, the same for every target: plan what the cluster gets, then hand each part to the target. */
function onboardSteps(
  options: OnboardOptions,
  factory: Factory,
  target: OnboardTarget,
): Step<OnboardState>[] {
  const titles = options.dryRun ? DRY_RUN_STEPS : ONBOARD_STEPS;
  return [
    {
      title: titles.check,
      run: async (state) => {
        // Local input first (exit 2 without a network call), then the cluster, then AWS.
        state.cluster = factory.operatorCluster();
        state.caData = state.cluster.caData();
        state.endpoints = await resolveEndpoints(options.aws, options.caBundleFile, factory);
        checkAgainstStack(state, options, factory);
        return target.check(state);
      },
    },
    {
      title: titles.plan,
      run: async (state) => {
        const { token, kept } = target.webhookToken(state);
        redact(token.token);
        state.token = token;
        state.tokenKept = kept;
        state.wanted = wantedObjects(options, factory, state);
        return target.plan(state);
      },
    },
    { title: titles.refresher, run: (state) => target.putObjects(state, "refresher") },
    {
      title: titles.credentials,
      run: async (state) => {
        const { kubeconfig, outcome } = await target.refresherKubeconfig(state);
        state.kubeconfig = kubeconfig;
        return outcome;
      },
    },
    {
      title: titles.record,
      run: async (state) => {
        const token = need(state.token);
        state.record = buildClusterRecord(options, need(state.kubeconfig), [token.sha256]);
        const outcome = await target.putRecord(state, state.record);
        return `token ${state.tokenKept ? "kept" : "generated (256 bits)"}; ${outcome}`;
      },
    },
    { title: titles.webhook, run: (state) => target.putObjects(state, "webhook") },
    { title: titles.verify, run: (state, progress) => target.verify(state, progress) },
    refresherCheckStep(options, factory, titles.refresherCheck),
  ];
}

/** Every object this run puts in the cluster: the refresher's, then the webhook and the labels. */
function wantedObjects(
  options: OnboardOptions,
  factory: Factory,
  state: OnboardState,
): WantedObjects {
  const endpoints = need(state.endpoints);
  const tokenInUrl = options.webhookAuth === "url" ? need(state.token).token : undefined;
  const url = webhookUrl(endpoints.webhookBase, options.clusterId, tokenInUrl);
  return {
    refresher: refresherObjects({
      ...options,
      labelPrefix: factory.labelPrefix,
      secretPolicy: state.secretPolicy === true,
    }),
    webhook: [
      ourWebhookConfiguration(url, endpoints.caPem, factory.labelPrefix),
      ...(options.namespaces.map((namespace) =>
        enabledNamespaceLabel(namespace, factory.names),
      ) as KubernetesObject[]),
    ],
  };
}
