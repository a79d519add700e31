/**
 * One registered cluster's API server, as the refresher uses it: a small, named surface over
 * `@kubernetes/client-node`. Every request carries the cluster's deadline and is counted.
 */
import {
  ApiException,
  CoreV1Api,
  EventsV1Api,
  type EventsV1Event,
  KubeConfig,
  Observable,
  type ObservableMiddleware,
  PatchStrategy,
  type RequestContext,
  type ResponseBody,
  ResponseContext,
  type V1Secret,
} from "@kubernetes/client-node";
import {
  DOCKER_CONFIG_JSON_KEY,
  DOCKER_CONFIG_JSON_TYPE,
  MANAGED_VALUE,
  NAMESPACE_ENABLED_VALUE,
} from "../core/contract.ts";
import { parseKubeconfig } from "../core/kubeconfig.ts";
import { sanitize } from "../core/sanitize.ts";
import { NoRedirectHttpLibrary } from "./no-redirect-http.ts";

export interface ManagedSecret {
  readonly namespace: string;
  readonly name: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly resourceVersion: string;
  readonly uid: string;
}

/** An events.k8s.io/v1 Event as `functions/core/events.ts` builds it. */
export interface NewEventBody {
  readonly metadata: { readonly name: string; readonly namespace: string };
}

/** What the refresher reads back from an Event it patched: enough to count a repeat. */
export interface PatchedEvent {
  readonly resourceVersion: string;
  readonly series: { readonly count: number; readonly lastObservedTime: string } | undefined;
}

/** A failed API call, with the API server's own message (e.g. a webhook's denial). */
export class KubernetesError extends Error {
  readonly status: number | undefined;
  constructor(action: string, error: unknown) {
    // The API server's words are a hostile cluster's to choose: one bounded, printable line.
    super(sanitize(`${action}: ${describe(error)}`));
    this.name = "KubernetesError";
    this.status = error instanceof ApiException ? error.code : undefined;
  }
}

const PAGE_SIZE = 500;
/**
 * Pages one list may take: 200 x 500 Secrets is far beyond a real namespace, and a broken or
 * hostile API server answering with endless `continue` tokens fails that cluster, not the run.
 */
export const MAX_PAGES = 200;
/**
 * Secrets are listed as metadata only (the API server's PartialObjectMetadataList): staleness needs
 * labels and annotations, so no ECR password ever enters the refresher's memory, and lists shrink.
 */
export const METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
/**
 * Bytes one answer, and all answers of one cluster's run, may take: a broken or hostile API server
 * sending an endless body fails that cluster, and the refresher's memory stays bounded for the
 * others. A metadata-only page of 500 Secrets is about 350 KB.
 */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
export const MAX_CLUSTER_BYTES = 64 * 1024 * 1024;

export class ClusterApi {
  readonly #core: CoreV1Api;
  readonly #events: EventsV1Api;
  readonly #options: {
    middleware: ObservableMiddleware[];
    middlewareMergeStrategy: "append";
    httpApi: NoRedirectHttpLibrary;
  };
  #calls = 0;
  #bytesRead = 0;
  readonly #callsByMethod = new Map<string, number>();
  /** The cluster's deadline: every request ends with it. */
  readonly #signal: AbortSignal;

  /** Refuses a kubeconfig outside the allow-list before the client library reads any of it. */
  constructor(kubeconfig: string, signal: AbortSignal) {
    const parsed = parseKubeconfig(kubeconfig);
    if (!parsed.ok) throw new Error(`record kubeconfig: ${parsed.error}`);
    this.#signal = signal;
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: parsed.value.clusters.map((cluster) => ({ ...cluster })),
      users: parsed.value.users.map((user) => ({ ...user })),
      contexts: parsed.value.contexts.map((context) => ({ ...context })),
      currentContext: parsed.value.currentContext,
    });
    this.#core = config.makeApiClient(CoreV1Api);
    this.#events = config.makeApiClient(EventsV1Api);
    const middleware: ObservableMiddleware = {
      pre: (context: RequestContext) => {
        this.#calls++;
        const method = String(context.getHttpMethod());
        this.#callsByMethod.set(method, (this.#callsByMethod.get(method) ?? 0) + 1);
        context.setSignal(signal);
        return new Observable(Promise.resolve(context));
      },
      post: (response: ResponseContext) =>
        new Observable(
          Promise.resolve(
            new ResponseContext(
              response.httpStatusCode,
              response.headers,
              this.#bounded(response.body),
            ),
          ),
        ),
    };
    this.#options = {
      middleware: [middleware],
      middlewareMergeStrategy: "append",
      httpApi: new NoRedirectHttpLibrary(),
    };
  }

  /** The body read in chunks, refused past the per-answer and per-cluster budgets. */
  #bounded(body: ResponseBody): ResponseBody {
    const read = async (): Promise<Buffer> => {
      const stream = body.stream();
      if (stream === null) return Buffer.alloc(0);
      const reader = stream.getReader();
      const chunks: Uint8Array[] = [];
      let size = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        this.#bytesRead += value.byteLength;
        if (size > MAX_RESPONSE_BYTES || this.#bytesRead > MAX_CLUSTER_BYTES) {
          await reader.cancel().catch(() => undefined);
          throw new Error(
            size > MAX_RESPONSE_BYTES
              ? `the API server's answer exceeded ${MAX_RESPONSE_BYTES / 1024 / 1024} MiB; giving up on this cluster`
              : `this cluster's answers exceeded ${MAX_CLUSTER_BYTES / 1024 / 1024} MiB in one run; giving up on it`,
          );
        }
        chunks.push(value);
      }
      return Buffer.concat(chunks);
    };
    return {
      text: async () => (await read()).toString("utf8"),
      binary: read,
      stream: () => body.stream(),
    };
  }

  /** API requests made so far (for the benchmark and the logs). */
  get calls(): number {
    return this.#calls;
  }

  /** The same, by HTTP method: GET for lists, PATCH and POST for writes. */
  get callsByMethod(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.#callsByMethod);
  }

  async enabledNamespaces(namespaceLabel: string): Promise<string[]> {
    const namespaces = await this.#listAll("list namespaces", (next) =>
      this.#core.listNamespace(
        {
          labelSelector: `${namespaceLabel}=${NAMESPACE_ENABLED_VALUE}`,
          limit: PAGE_SIZE,
          _continue: next,
        },
        this.#options,
      ),
    );
    return namespaces.flatMap((namespace) =>
      namespace.metadata?.name ? [namespace.metadata.name] : [],
    );
  }

  async managedSecrets(
    namespace: string,
    managedLabel: string,
    pageSize = PAGE_SIZE,
  ): Promise<ManagedSecret[]> {
    const secrets = await this.#listAll(`list Secrets in ${namespace}`, (next) =>
      this.#core.listNamespacedSecret(
        {
          namespace,
          labelSelector: `${managedLabel}=${MANAGED_VALUE}`,
          limit: pageSize,
          _continue: next,
        },
        withHeader(this.#options, "Accept", METADATA_ONLY),
      ),
    );
    return secrets.map((secret) => toManagedSecret(secret, namespace));
  }

  /** Every page of a list, joined by `continue` tokens, up to MAX_PAGES. */
  async #listAll<T>(
    action: string,
    page: (next: string | undefined) => Promise<{
      items: T[] | null | undefined;
      metadata?: { _continue?: string | undefined } | undefined;
    }>,
  ): Promise<T[]> {
    const items: T[] = [];
    let next: string | undefined;
    let pages = 0;
    do {
      if (++pages > MAX_PAGES)
        throw new KubernetesError(
          action,
          `the API server kept answering with more pages (over ${MAX_PAGES}); giving up on this cluster`,
        );
      const answer = await this.#call(action, () => page(next));
      // An empty PartialObjectMetadataList comes back with "items": null.
      items.push(...(answer.items ?? []));
      next = answer.metadata?._continue || undefined;
    } while (next);
    return items;
  }

  /**
   * Merge-patches one annotation. The API server sends the UPDATE through the webhook, so the
   * Secret that comes back already holds whatever the webhook wrote (or the call fails with its
   * denial).
   */
  /**
   * A merge patch of one annotation. `signal` ends this request alone (a mark past its slot): the
   * API server then cancels the request, and with it its call to the webhook.
   */
  async annotate(
    namespace: string,
    name: string,
    annotation: string,
    value: string,
    signal?: AbortSignal,
  ): Promise<ManagedSecret> {
    const options = withContentType(this.#options, PatchStrategy.MergePatch);
    const secret = await this.#call(`mark Secret ${namespace}/${name}`, () =>
      this.#core.patchNamespacedSecret(
        { namespace, name, body: { metadata: { annotations: { [annotation]: value } } } },
        signal ? withSignal(options, AbortSignal.any([this.#signal, signal])) : options,
      ),
    );
    return toManagedSecret(secret, namespace);
  }

  /** Creates an empty managed Secret for the webhook to fill; an existing one is left alone. */
  async createManagedSecret(
    namespace: string,
    name: string,
    managedLabel: string,
  ): Promise<"created" | "exists"> {
    try {
      await this.#core.createNamespacedSecret(
        {
          namespace,
          body: {
            metadata: { name, labels: { [managedLabel]: MANAGED_VALUE } },
            type: DOCKER_CONFIG_JSON_TYPE,
            data: { [DOCKER_CONFIG_JSON_KEY]: Buffer.from('{"auths":{}}').toString("base64") },
          },
        },
        this.#options,
      );
      return "created";
    } catch (error) {
      if (error instanceof ApiException && error.code === 409) return "exists";
      throw new KubernetesError(`create Secret ${namespace}/${name}`, error);
    }
  }

  /** Adds the Secret to a ServiceAccount's imagePullSecrets, keeping the entries it has. */
  async addImagePullSecret(
    namespace: string,
    serviceAccount: string,
    secretName: string,
  ): Promise<"added" | "present"> {
    const account = await this.#call(`read ServiceAccount ${namespace}/${serviceAccount}`, () =>
      this.#core.readNamespacedServiceAccount({ namespace, name: serviceAccount }, this.#options),
    );
    const existing = account.imagePullSecrets ?? [];
    if (existing.some((reference) => reference.name === secretName)) return "present";
    await this.#call(`patch ServiceAccount ${namespace}/${serviceAccount}`, () =>
      this.#core.patchNamespacedServiceAccount(
        {
          namespace,
          name: serviceAccount,
          // resourceVersion makes the merge patch conditional: a concurrent change fails instead of being lost.
          body: {
            metadata: { resourceVersion: account.metadata?.resourceVersion },
            imagePullSecrets: [...existing, { name: secretName }],
          },
        },
        withContentType(this.#options, PatchStrategy.MergePatch),
      ),
    );
    return "added";
  }

  /** A Namespace's uid (an Event about it must name it), or undefined when it does not exist. */
  async namespaceUid(name: string): Promise<string | undefined> {
    const page = await this.#call(`find namespace ${name}`, () =>
      this.#core.listNamespace({ fieldSelector: `metadata.name=${name}`, limit: 1 }, this.#options),
    );
    return page.items[0]?.metadata?.uid;
  }

  /** Creates an Event; one of that name already there is reported, not an error. */
  async createEvent(event: NewEventBody): Promise<"created" | "exists"> {
    const { namespace, name } = event.metadata;
    try {
      await this.#events.createNamespacedEvent(
        // MicroTimes travel as RFC 3339 strings, which the client's serializer passes through.
        { namespace, body: event as unknown as EventsV1Event },
        this.#options,
      );
      return "created";
    } catch (error) {
      if (error instanceof ApiException && error.code === 409) return "exists";
      throw new KubernetesError(`create Event ${namespace}/${name}`, error);
    }
  }

  /** Merge-patches an Event and returns what counting a repeat needs. */
  async patchEvent(namespace: string, name: string, body: object): Promise<PatchedEvent> {
    const event = await this.#call(`patch Event ${namespace}/${name}`, () =>
      this.#events.patchNamespacedEvent(
        { namespace, name, body },
        withContentType(this.#options, PatchStrategy.MergePatch),
      ),
    );
    const series = event.series;
    return {
      resourceVersion: event.metadata?.resourceVersion ?? "",
      series: series
        ? { count: series.count, lastObservedTime: new Date(series.lastObservedTime).toISOString() }
        : undefined,
    };
  }

  /**
   * Flips an annotation from "true" to "false" in one conditional step (a JSON Patch `test`), so
   * only one run sees the change: "flipped", "unchanged" when it was not "true", "absent" when the
   * Event does not exist.
   */
  async flipEventAnnotation(
    namespace: string,
    name: string,
    annotation: string,
  ): Promise<"flipped" | "unchanged" | "absent"> {
    const path = `/metadata/annotations/${annotation.replaceAll("~", "~0").replaceAll("/", "~1")}`;
    try {
      await this.#events.patchNamespacedEvent(
        {
          namespace,
          name,
          body: [
            { op: "test", path, value: "true" },
            { op: "replace", path, value: "false" },
          ],
        },
        withContentType(this.#options, PatchStrategy.JsonPatch),
      );
      return "flipped";
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return "absent";
      // A failed `test` is refused as invalid (422): the annotation was not "true".
      if (error instanceof ApiException && error.code === 422) return "unchanged";
      throw new KubernetesError(`patch Event ${namespace}/${name}`, error);
    }
  }

  /** A new token for a ServiceAccount (TokenRequest), as the refresher renews its own. */
  async requestToken(
    namespace: string,
    name: string,
    expirationSeconds: number,
  ): Promise<{ token: string; expiresAtMs: number }> {
    const request = await this.#call(`request a token for ${namespace}/${name}`, () =>
      this.#core.createNamespacedServiceAccountToken(
        { namespace, name, body: { spec: { audiences: [], expirationSeconds } } },
        this.#options,
      ),
    );
    const token = request.status?.token;
    const expires = request.status?.expirationTimestamp;
    if (!token || !expires)
      throw new KubernetesError(
        `request a token for ${namespace}/${name}`,
        "no token in the answer",
      );
    return { token, expiresAtMs: new Date(expires).getTime() };
  }

  async #call<T>(action: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw new KubernetesError(action, error);
    }
  }
}

function toManagedSecret(secret: V1Secret, namespace: string): ManagedSecret {
  return {
    namespace: secret.metadata?.namespace ?? namespace,
    name: secret.metadata?.name ?? "",
    annotations: secret.metadata?.annotations ?? {},
    resourceVersion: secret.metadata?.resourceVersion ?? "",
    uid: secret.metadata?.uid ?? "",
  };
}

function withContentType<T extends { middleware: ObservableMiddleware[] }>(
  options: T,
  contentType: string,
): T {
  return withHeader(options, "Content-Type", contentType);
}

/** Options whose requests carry `signal` instead of the cluster's own deadline alone. */
function withSignal<T extends { middleware: ObservableMiddleware[] }>(
  options: T,
  signal: AbortSignal,
): T {
  const ending: ObservableMiddleware = {
    pre: (context: RequestContext) => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  return { ...options, middleware: [...options.middleware, ending] };
}

function withHeader<T extends { middleware: ObservableMiddleware[] }>(
  options: T,
  name: string,
  value: string,
): T {
  const header: ObservableMiddleware = {
    pre: (context: RequestContext) => {
      context.setHeaderParam(name, value);
      return new Observable(Promise.resolve(context));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  return { ...options, middleware: [...options.middleware, header] };
}

/** The API server's message (a Status), never the request or response body as a whole. */
function describe(error: unknown): string {
  if (error instanceof ApiException) {
    const body: unknown = typeof error.body === "string" ? safeJson(error.body) : error.body;
    const message = (body as { message?: unknown } | undefined)?.message;
    return `HTTP ${error.code}: ${typeof message === "string" ? message : "no message"}`;
  }
  if (error instanceof Error) {
    // fetch reports network failures as "fetch failed" with the reason (ECONNREFUSED, …) in cause.
    const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
    const reason = cause ? ` (${String(cause.code ?? cause.message ?? cause)})` : "";
    return `${error.name}: ${error.message}${reason}`;
  }
  return String(error);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
