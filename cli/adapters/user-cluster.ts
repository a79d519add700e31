/**
 * The cluster being onboarded, reached with the operator's own kubeconfig (`--kubeconfig`,
 * `--context`, `KUBECONFIG`): access reviews, server-side apply, TokenRequest, and the dry-run
 * write that proves the webhook answers. Messages carry the API server's words, never bodies.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
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

  /** Loads the kubeconfig as kubectl would; a missing file or unknown context is bad input. */
  static load(choice: KubeconfigChoice, env: NodeJS.ProcessEnv = process.env): UserCluster {
    const config = new KubeConfig();
    const files = choice.kubeconfig
      ? [choice.kubeconfig]
      : (env.KUBECONFIG?.split(":").filter(Boolean) ?? [join(homedir(), ".kube", "config")]);
    const missing = files.filter((file) => !existsSync(file));
    if (missing.length === files.length)
      throw new InputError(
        `no kubeconfig found (${files.join(", ")}): pass --kubeconfig or set KUBECONFIG`,
      );
    try {
      if (choice.kubeconfig) config.loadFromFile(choice.kubeconfig);
      else config.loadFromDefault();
    } catch (error) {
      throw new InputError(`kubeconfig could not be read: ${(error as Error).message}`);
    }
    if (choice.context) {
      if (!config.getContextObject(choice.context))
        throw new InputError(
          `--context ${JSON.stringify(choice.context)}: no such context (have: ${config.contexts.map((context) => context.name).join(", ") || "none"})`,
        );
      config.setCurrentContext(choice.context);
    }
    if (!config.getCurrentCluster())
      throw new InputError("the kubeconfig has no current context: pass --context");
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

export function describeObject(object: KubernetesObject): string {
  const namespace = object.metadata?.namespace ? `${object.metadata.namespace}/` : "";
  return `${object.kind} ${namespace}${object.metadata?.name}`;
}
