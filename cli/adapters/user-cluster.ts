/**
 * The cluster being onboarded, reached with the operator's own kubeconfig (`--kubeconfig`,
 * `--context`, `KUBECONFIG`): access reviews, server-side apply, TokenRequest, and the dry-run
 * write that proves the webhook answers. Messages carry the API server's words, never bodies.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import {
  AdmissionregistrationV1Api,
  ApiException,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  type V1Secret,
  VersionApi,
} from "@kubernetes/client-node";
import { KubernetesError } from "../../functions/adapters/kubernetes.ts";
import { makeNoRedirectClient } from "../../functions/adapters/no-redirect-http.ts";
import {
  type ContractNames,
  DOCKER_CONFIG_JSON_KEY,
  DOCKER_CONFIG_JSON_TYPE,
  MANAGED_VALUE,
} from "../../functions/core/contract.ts";
import { InputError } from "../core/inputs.ts";
import {
  type AccessCheck,
  FIELD_MANAGER,
  type WebhookConfigurationView,
} from "../core/onboard-plan.ts";

export type ApplyOutcome = "created" | "configured" | "unchanged";

export interface KubeconfigChoice {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
}

export class UserCluster {
  readonly config: KubeConfig;
  readonly #objects: KubernetesObjectApi;
  readonly #core: CoreV1Api;
  readonly #authorization: AuthorizationV1Api;
  readonly #admission: AdmissionregistrationV1Api;
  readonly #rbac: RbacAuthorizationV1Api;
  readonly #version: VersionApi;

  constructor(config: KubeConfig) {
    this.config = config;
    // The Kubernetes API never redirects: a redirect is refused, not followed with a PATCH body.
    this.#objects = makeNoRedirectClient(config, KubernetesObjectApi);
    this.#core = makeNoRedirectClient(config, CoreV1Api);
    this.#authorization = makeNoRedirectClient(config, AuthorizationV1Api);
    this.#admission = makeNoRedirectClient(config, AdmissionregistrationV1Api);
    this.#rbac = makeNoRedirectClient(config, RbacAuthorizationV1Api);
    this.#version = makeNoRedirectClient(config, VersionApi);
  }

  /**
   * Loads the kubeconfig as kubectl would (`--kubeconfig`, else every file `KUBECONFIG` lists that
   * exists, else `~/.kube/config`), and checks the chosen context as kubectl does before its first
   * call: each problem is bad input, worded in kubectl's (client-go's) own words.
   */
  static load(choice: KubeconfigChoice, env: NodeJS.ProcessEnv = process.env): UserCluster {
    const config = readKubeconfig(choice, env);
    const problem = contextProblem(config, choice.context);
    if (problem) throw new InputError(problem);
    if (choice.context) config.setCurrentContext(choice.context);
    return new UserCluster(config);
  }

  get server(): string {
    return this.config.getCurrentCluster()?.server ?? "";
  }

  /** The base64 CA the refresher must trust for this API server. */
  caData(): string {
    const cluster = this.config.getCurrentCluster();
    if (cluster?.caData) return cluster.caData;
    if (cluster?.caFile) return readFileSync(cluster.caFile).toString("base64");
    throw new InputError(
      `the kubeconfig's cluster ${JSON.stringify(cluster?.name)} has no CA (certificate-authority or -data); the refresher needs it to verify the API server`,
    );
  }

  /** The API server's Kubernetes version, as major and minor numbers (`1.30+` reads as 1.30). */
  async serverVersion(): Promise<{ major: number; minor: number }> {
    const info = await this.#call("read the server version", () => this.#version.getCode());
    return { major: Number.parseInt(info.major, 10), minor: Number.parseInt(info.minor, 10) };
  }

  /** The checks the current user fails (SelfSubjectAccessReview). */
  async deniedAccess(checks: readonly AccessCheck[]): Promise<AccessCheck[]> {
    const results = await Promise.all(
      checks.map(async (check) => {
        const review = await this.#call("review access", () =>
          this.#authorization.createSelfSubjectAccessReview({
            body: {
              spec: {
                resourceAttributes: {
                  verb: check.verb,
                  group: check.group,
                  resource: check.resource,
                  ...(check.subresource ? { subresource: check.subresource } : {}),
                  ...(check.namespace ? { namespace: check.namespace } : {}),
                },
              },
            },
          }),
        );
        return review.status?.allowed ? undefined : check;
      }),
    );
    return results.filter((check) => check !== undefined);
  }

  async missingNamespaces(names: readonly string[]): Promise<string[]> {
    const found = await Promise.all(
      names.map((name) => this.read({ apiVersion: "v1", kind: "Namespace", metadata: { name } })),
    );
    return names.filter((_, index) => found[index] === undefined);
  }

  async read<T extends KubernetesObject>(object: KubernetesObject): Promise<T | undefined> {
    try {
      return (await this.#objects.read(object as T & { metadata: { name: string } })) as T;
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw new KubernetesError(`read ${describeObject(object)}`, error);
    }
  }

  /** Server-side apply as the CLI's field manager; tells whether anything changed. */
  async apply(object: KubernetesObject, dryRun = false): Promise<ApplyOutcome> {
    const before = await this.read(object);
    const after = await this.#call(`apply ${describeObject(object)}`, () =>
      this.#objects.patch(
        object,
        undefined,
        dryRun ? "All" : undefined,
        FIELD_MANAGER,
        true,
        PatchStrategy.ServerSideApply,
      ),
    );
    if (!before) return "created";
    return before.metadata?.resourceVersion === after.metadata?.resourceVersion
      ? "unchanged"
      : "configured";
  }

  async remove(object: KubernetesObject): Promise<"deleted" | "absent"> {
    try {
      await this.#objects.delete(object);
      return "deleted";
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return "absent";
      throw new KubernetesError(`delete ${describeObject(object)}`, error);
    }
  }

  async webhookConfigurations(): Promise<WebhookConfigurationView[]> {
    const list = await this.#call("list MutatingWebhookConfigurations", () =>
      this.#admission.listMutatingWebhookConfiguration(),
    );
    return list.items.map((item) => ({
      name: item.metadata?.name ?? "",
      webhooks: (item.webhooks ?? []).map((webhook) => ({
        name: webhook.name,
        clientConfig: {
          ...(webhook.clientConfig.url ? { url: webhook.clientConfig.url } : {}),
          ...(webhook.clientConfig.caBundle ? { caBundle: webhook.clientConfig.caBundle } : {}),
          ...(webhook.clientConfig.service
            ? {
                service: {
                  namespace: webhook.clientConfig.service.namespace,
                  name: webhook.clientConfig.service.name,
                },
              }
            : {}),
        },
        ...(webhook.namespaceSelector ? { namespaceSelector: webhook.namespaceSelector } : {}),
        ...(webhook.objectSelector ? { objectSelector: webhook.objectSelector } : {}),
      })),
    }));
  }

  /** Namespaces carrying a label selector's match, by name. */
  async namespacesWith(labelSelector: string): Promise<string[]> {
    const list = await this.#call("list namespaces", () =>
      this.#core.listNamespace({ labelSelector }),
    );
    return list.items.map((namespace) => namespace.metadata?.name ?? "").filter(Boolean);
  }

  /** RoleBindings with a label, in every namespace: what onboard bound for the refresher. */
  async roleBindingsWith(labelSelector: string): Promise<{ namespace: string; name: string }[]> {
    const list = await this.#call("list RoleBindings", () =>
      this.#rbac.listRoleBindingForAllNamespaces({ labelSelector }),
    );
    return list.items.map((binding) => ({
      namespace: binding.metadata?.namespace ?? "",
      name: binding.metadata?.name ?? "",
    }));
  }

  /** A bound token for a ServiceAccount (TokenRequest). */
  async requestToken(namespace: string, name: string, expirationSeconds: number): Promise<string> {
    const request = await this.#call(
      `request a token for ServiceAccount ${namespace}/${name}`,
      () =>
        this.#core.createNamespacedServiceAccountToken({
          namespace,
          name,
          body: { spec: { audiences: [], expirationSeconds } },
        }),
    );
    const token = request.status?.token;
    if (!token) throw new Error(`no token in the TokenRequest answer for ${namespace}/${name}`);
    return token;
  }

  /**
   * Creates a managed Secret with `dryRun=All`: it passes through the webhook exactly as a real
   * write would, and nothing is stored.
   */
  async dryRunManagedSecret(
    namespace: string,
    name: string,
    names: ContractNames,
    registries?: readonly string[],
  ): Promise<V1Secret> {
    return this.#call(`dry-run create of a managed Secret in ${namespace}`, () =>
      this.#core.createNamespacedSecret({
        namespace,
        dryRun: "All",
        body: {
          metadata: {
            name,
            labels: { [names.managedLabel]: MANAGED_VALUE },
            ...(registries
              ? { annotations: { [names.registriesAnnotation]: registries.join(",") } }
              : {}),
          },
          type: DOCKER_CONFIG_JSON_TYPE,
          data: { [DOCKER_CONFIG_JSON_KEY]: Buffer.from("FAKE").toString("base64") },
        },
      }),
    );
  }

  async #call<T>(action: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw new KubernetesError(action, error);
    }
  }
}

/**
 * The kubeconfig files, merged as kubectl merges them: missing files in `KUBECONFIG` are skipped,
 * the first file to set current-context wins. A file that does not parse is named.
 */
function readKubeconfig(choice: KubeconfigChoice, env: NodeJS.ProcessEnv): KubeConfig {
  const files = choice.kubeconfig
    ? [choice.kubeconfig]
    : (env.KUBECONFIG?.split(delimiter).filter(Boolean) ?? [join(homedir(), ".kube", "config")]);
  const present = files.filter((file) => existsSync(file));
  // kubectl's words for an empty configuration, with the flags that give this CLI one.
  if (present.length === 0)
    throw new InputError(
      `invalid configuration: no configuration has been provided (no kubeconfig at ${files.join(", ")}): pass --kubeconfig or set KUBECONFIG`,
    );
  const config = new KubeConfig();
  for (const file of present) {
    const next = new KubeConfig();
    try {
      next.loadFromFile(file);
    } catch (error) {
      throw new InputError(`kubeconfig ${file} could not be read: ${(error as Error).message}`);
    }
    if (!config.currentContext && next.currentContext) config.currentContext = next.currentContext;
    // The first file to name a cluster, user or context wins, as in kubectl.
    for (const cluster of next.clusters)
      if (!config.getCluster(cluster.name)) config.addCluster(cluster);
    for (const user of next.users) if (!config.getUser(user.name)) config.addUser(user);
    for (const context of next.contexts)
      if (!config.getContextObject(context.name)) config.addContext(context);
  }
  return config;
}

/**
 * What keeps `context` (else the current-context) from being used, as client-go's
 * `clientcmd.ConfirmUsable` words it (kubectl prints it as "Error in configuration: …"), with the
 * flag that fixes it; undefined when it is usable.
 */
function contextProblem(config: KubeConfig, context: string | undefined): string | undefined {
  const available = config.contexts.map((entry) => entry.name).join(", ") || "none";
  const name = context ?? config.currentContext;
  if (!name)
    return `no context chosen: the kubeconfig sets no current-context; pass --context (contexts: ${available})`;
  const chosen = config.getContextObject(name);
  if (!chosen) {
    const fix = context
      ? `--context ${JSON.stringify(context)}: `
      : "the kubeconfig's current-context: ";
    return `${fix}context was not found for specified context: ${name} (contexts: ${available}); pass --context with one of them`;
  }
  const problems = [
    ...(config.getCluster(chosen.cluster)
      ? []
      : [
          `cluster ${JSON.stringify(chosen.cluster)} was not found for context ${JSON.stringify(name)}`,
        ]),
    ...(chosen.user === undefined || config.getUser(chosen.user)
      ? []
      : [`user ${JSON.stringify(chosen.user)} was not found for context ${JSON.stringify(name)}`]),
  ];
  return problems.length > 0 ? `invalid configuration: ${problems.join(", ")}` : undefined;
}

export function describeObject(object: KubernetesObject): string {
  const namespace = object.metadata?.namespace ? `${object.metadata.namespace}/` : "";
  return `${object.kind} ${namespace}${object.metadata?.name}`;
}
