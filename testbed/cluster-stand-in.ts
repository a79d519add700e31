/**
 * Many Kubernetes clusters behind one HTTPS server, at the protocol level, for fleet-scale runs
 * where a real kube-apiserver per cluster would not fit on this machine. Each cluster lives under
 * `/clusters/<id>` (a kubeconfig server may carry a path) and serves what the refresher uses: list
 * namespaces and Secrets by label (paginated), merge-patch and create Secrets. Writes of managed
 * Secrets in enabled namespaces go through the cluster's webhook exactly as kube-apiserver sends
 * them (an AdmissionReview shaped like the recorded ones in test/fixtures/, `?timeout=10s`, the
 * JSON Patch applied), and fail with kube-apiserver's own messages when the webhook does.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer as createHttpsServer, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import fastJsonPatch from "fast-json-patch";

export interface StandInSecret {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  type: string;
  data?: Record<string, string>;
}

export interface StandInCluster {
  readonly id: string;
  /** Bearer token the refresher must present. */
  readonly token: string;
  /** `https://<host>/v1/clusters/<id>/<token>` */
  readonly webhookUrl: string;
  readonly webhookName: string;
  readonly namespaces: Map<string, Record<string, string>>;
  readonly secrets: Map<string, StandInSecret>;
}

export interface ClusterStandInOptions {
  readonly tls: { readonly cert: string; readonly key: string };
  /** CA of the webhook's certificate. */
  readonly webhookCaPem: string;
  readonly labelPrefix: string;
}

export interface AdmissionOutcome {
  readonly clusterId: string;
  readonly operation: "CREATE" | "UPDATE";
  readonly ok: boolean;
  /** kube-apiserver's message when the write failed. */
  readonly message?: string;
  readonly ms: number;
}

export interface ClusterStandIn {
  /** `https://127.0.0.1:<port>`; a cluster's API server is `<url>/clusters/<id>`. */
  readonly url: string;
  readonly clusters: Map<string, StandInCluster>;
  readonly admissions: AdmissionOutcome[];
  /** Every AdmissionReview sent, when recording is on (for the fidelity test). */
  readonly sentReviews: unknown[];
  recordReviews: boolean;
  addCluster(cluster: Omit<StandInCluster, "namespaces" | "secrets">): StandInCluster;
  stop(): Promise<void>;
}

class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string, message: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

export async function startClusterStandIn(options: ClusterStandInOptions): Promise<ClusterStandIn> {
  const clusters = new Map<string, StandInCluster>();
  const admissions: AdmissionOutcome[] = [];
  const state = { recordReviews: false, sentReviews: [] as unknown[] };
  let resourceVersion = 1000;
  const managedLabel = `${options.labelPrefix}/managed`;
  const namespaceLabel = `${options.labelPrefix}/namespace`;

  const route = async (request: IncomingMessage, body: string): Promise<[number, unknown]> => {
    const url = new URL(request.url ?? "/", "https://stand-in");
    const match = /^\/clusters\/([^/]+)(\/api\/v1\/.*)$/.exec(url.pathname);
    const cluster = match ? clusters.get(match[1] ?? "") : undefined;
    if (!cluster || !match)
      throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    if (request.headers.authorization !== `Bearer ${cluster.token}`)
      throw new ApiError(401, "Unauthorized", "Unauthorized");
    const path = match[2] ?? "";
    const selector = parseSelector(url.searchParams.get("labelSelector"));
    const limit = Number(url.searchParams.get("limit") ?? 0) || Number.POSITIVE_INFINITY;
    const start = Number(url.searchParams.get("continue") ?? 0);
    if (request.method === "GET" && path === "/api/v1/namespaces") {
      const items = [...cluster.namespaces]
        .filter(([, labels]) => matches(labels, selector))
        .map(([name, labels]) => ({ metadata: { name, labels } }));
      return [200, page("NamespaceList", items, start, limit)];
    }
    const secretPath = /^\/api\/v1\/namespaces\/([^/]+)\/secrets(?:\/([^/]+))?$/.exec(path);
    if (!secretPath)
      throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    const [, namespace = "", name] = secretPath;
    if (request.method === "GET" && !name) {
      const items = [...cluster.secrets.values()].filter(
        (secret) =>
          secret.metadata.namespace === namespace &&
          matches(secret.metadata.labels ?? {}, selector),
      );
      return [200, page("SecretList", items, start, limit)];
    }
    if (request.method === "PATCH" && name) {
      const old = cluster.secrets.get(`${namespace}/${name}`);
      if (!old) throw new ApiError(404, "NotFound", `secrets "${name}" not found`);
      const patched = mergePatch(structuredClone(old), JSON.parse(body)) as StandInSecret;
      return [200, await admitAndStore(cluster, "UPDATE", patched, old)];
    }
    if (request.method === "POST" && !name) {
      const created = JSON.parse(body) as StandInSecret;
      created.metadata.namespace = namespace;
      created.metadata.uid = randomUUID();
      if (cluster.secrets.has(`${namespace}/${created.metadata.name}`))
        throw new ApiError(
          409,
          "AlreadyExists",
          `secrets "${created.metadata.name}" already exists`,
        );
      return [201, await admitAndStore(cluster, "CREATE", created, undefined)];
    }
    throw new ApiError(
      405,
      "MethodNotAllowed",
      "the server does not allow this method on the requested resource",
    );
  };

  const admitAndStore = async (
    cluster: StandInCluster,
    operation: "CREATE" | "UPDATE",
    object: StandInSecret,
    old: StandInSecret | undefined,
  ): Promise<StandInSecret> => {
    const namespaceLabels = cluster.namespaces.get(object.metadata.namespace);
    if (!namespaceLabels)
      throw new ApiError(404, "NotFound", `namespaces "${object.metadata.namespace}" not found`);
    let stored = object;
    // The webhook configuration's selectors: an enabled namespace and a managed Secret.
    if (
      namespaceLabels[namespaceLabel] === "enabled" &&
      object.metadata.labels?.[managedLabel] === "true"
    ) {
      const started = performance.now();
      try {
        stored = await callWebhook(cluster, operation, object, old);
        admissions.push({
          clusterId: cluster.id,
          operation,
          ok: true,
          ms: performance.now() - started,
        });
      } catch (error) {
        admissions.push({
          clusterId: cluster.id,
          operation,
          ok: false,
          message: (error as Error).message,
          ms: performance.now() - started,
        });
        throw error;
      }
    }
    stored.metadata.resourceVersion = String(++resourceVersion);
    cluster.secrets.set(`${stored.metadata.namespace}/${stored.metadata.name}`, stored);
    return stored;
  };

  const callWebhook = async (
    cluster: StandInCluster,
    operation: "CREATE" | "UPDATE",
    object: StandInSecret,
    old: StandInSecret | undefined,
  ): Promise<StandInSecret> => {
    const uid = randomUUID();
    const kind = { group: "", version: "v1", kind: "Secret" };
    const resource = { group: "", version: "v1", resource: "secrets" };
    const review = {
      kind: "AdmissionReview",
      apiVersion: "admission.k8s.io/v1",
      request: {
        uid,
        kind,
        resource,
        requestKind: kind,
        requestResource: resource,
        name: object.metadata.name,
        namespace: object.metadata.namespace,
        operation,
        userInfo: {
          username: "system:serviceaccount:ecr-anywhere:ecr-anywhere-refresher",
          groups: ["system:serviceaccounts", "system:authenticated"],
        },
        object,
        oldObject: old ?? null,
        dryRun: false,
        options: {
          kind: operation === "CREATE" ? "CreateOptions" : "UpdateOptions",
          apiVersion: "meta.k8s.io/v1",
        },
      },
    };
    if (state.recordReviews) state.sentReviews.push(review);
    const failed = (message: string) =>
      new ApiError(
        500,
        "InternalError",
        `Internal error occurred: failed calling webhook "${cluster.webhookName}": failed to call webhook: ${message}`,
      );
    let answer: { status: number; body: string };
    try {
      answer = await post(
        `${cluster.webhookUrl}?timeout=10s`,
        JSON.stringify(review),
        options.webhookCaPem,
        10_000,
      );
    } catch (error) {
      throw failed(`Post "${cluster.webhookUrl}?timeout=10s": ${(error as Error).message}`);
    }
    // kube-apiserver's REST client: a 429 without Retry-After is not retried.
    if (answer.status === 429)
      throw failed("the server has received too many requests and has asked us to try again later");
    if (answer.status === 403) throw failed("Forbidden");
    if (answer.status !== 200)
      throw failed(`the server responded with status code ${answer.status}`);
    const response = (
      JSON.parse(answer.body) as {
        response: {
          uid: string;
          allowed: boolean;
          patch?: string;
          status?: { code?: number; message?: string };
        };
      }
    ).response;
    if (response.uid !== uid) throw failed(`expected response.uid="${uid}", got "${response.uid}"`);
    if (!response.allowed)
      throw new ApiError(
        response.status?.code ?? 403,
        "Forbidden",
        `admission webhook "${cluster.webhookName}" denied the request: ${response.status?.message ?? ""}`,
      );
    if (!response.patch) return object;
    const operations = JSON.parse(
      Buffer.from(response.patch, "base64").toString("utf8"),
    ) as fastJsonPatch.Operation[];
    return fastJsonPatch.applyPatch(object, operations, true, false).newDocument;
  };

  const serve = async (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    try {
      const [status, body] = await route(request, Buffer.concat(chunks).toString("utf8"));
      respond(response, status, body);
    } catch (error) {
      const apiError =
        error instanceof ApiError
          ? error
          : new ApiError(500, "InternalError", (error as Error).message);
      respond(response, apiError.code, {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: apiError.message,
        reason: apiError.reason,
        code: apiError.code,
      });
    }
  };
  const server: Server = createHttpsServer(
    options.tls,
    (request, response) => void serve(request, response),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `https://127.0.0.1:${port}`,
    clusters,
    admissions,
    addCluster(cluster: Omit<StandInCluster, "namespaces" | "secrets">) {
      const full: StandInCluster = { ...cluster, namespaces: new Map(), secrets: new Map() };
      clusters.set(cluster.id, full);
      return full;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

function respond(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}

function parseSelector(selector: string | null): Record<string, string> {
  return Object.fromEntries(
    (selector ?? "")
      .split(",")
      .filter(Boolean)
      .map((term) => term.split("=") as [string, string]),
  );
}

function matches(labels: Record<string, string>, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

function page(kind: string, items: unknown[], start: number, limit: number) {
  const end = Math.min(items.length, start + limit);
  return {
    kind,
    apiVersion: "v1",
    metadata: { resourceVersion: "1", ...(end < items.length ? { continue: String(end) } : {}) },
    items: items.slice(start, end),
  };
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const result = (
    target && typeof target === "object" && !Array.isArray(target) ? target : {}
  ) as Record<string, unknown>;
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

function post(
  url: string,
  body: string,
  caPem: string,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const call = httpsRequest(
      url,
      {
        method: "POST",
        ca: caPem,
        timeout: timeoutMs,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      },
    );
    call.on("timeout", () => call.destroy(new Error("context deadline exceeded")));
    call.on("error", reject);
    call.end(body);
  });
}
