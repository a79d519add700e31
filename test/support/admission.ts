/** Builders for the objects a kube-apiserver sends, and for cluster records and tokens. */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import jsonPatch from "fast-json-patch";
import { contractNames } from "../../functions/core/contract.ts";
import type { SecretObject } from "../../functions/core/secret.ts";
import { toFunctionUrlEvent } from "../../functions/local/function-url-event.ts";
import type { FunctionUrlEvent } from "../../functions/webhook/http.ts";

export const names = contractNames();
export const EAST_REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

export function managedSecret(overrides: Partial<SecretObject> = {}): SecretObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "ecr-pull", namespace: "apps", labels: { [names.managedLabel]: "true" } },
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": Buffer.from("junk").toString("base64") },
    ...overrides,
  };
}

export interface ReviewOptions {
  readonly object?: unknown;
  readonly oldObject?: unknown;
  readonly operation?: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  readonly resource?: { group: string; version: string; resource: string };
  readonly subResource?: string;
  readonly dryRun?: boolean;
  readonly uid?: string;
}

export function admissionReview(options: ReviewOptions = {}) {
  const object = (options.object ?? managedSecret()) as SecretObject;
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: options.uid ?? randomUUID(),
      kind: { group: "", version: "v1", kind: "Secret" },
      resource: options.resource ?? { group: "", version: "v1", resource: "secrets" },
      ...(options.subResource ? { subResource: options.subResource } : {}),
      requestKind: { group: "", version: "v1", kind: "Secret" },
      requestResource: { group: "", version: "v1", resource: "secrets" },
      name: object.metadata?.name,
      namespace: object.metadata?.namespace,
      operation: options.operation ?? "CREATE",
      userInfo: {
        username: "kubernetes-admin",
        groups: ["system:masters", "system:authenticated"],
      },
      object,
      oldObject: options.oldObject ?? null,
      dryRun: options.dryRun ?? false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
    },
  };
}

export function newWebhookToken(): { token: string; sha256: string } {
  const token = randomBytes(32).toString("base64url");
  return { token, sha256: createHash("sha256").update(token).digest("hex") };
}

export interface EventOptions {
  readonly clusterId: string;
  readonly token: string;
  readonly body: unknown;
  readonly base64?: boolean;
  readonly sourceIp?: string;
  readonly method?: string;
}

export function webhookEvent(options: EventOptions): FunctionUrlEvent {
  const text = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  return toFunctionUrlEvent({
    method: options.method ?? "POST",
    url: `/v1/clusters/${options.clusterId}/${options.token}?timeout=10s`,
    headers: {
      "content-type": options.base64 ? "application/octet-stream" : "application/json",
      "user-agent": "kube-apiserver-admission",
    },
    body: Buffer.from(text),
    sourceIp: options.sourceIp ?? "203.0.113.10",
  });
}

/** The object as the API server stores it after applying the webhook's JSON Patch. */
export function applied(object: SecretObject, response: { patch?: string }): SecretObject {
  return jsonPatch.applyPatch(
    structuredClone(object),
    patchOf(response) as jsonPatch.Operation[],
    true,
    false,
  ).newDocument as SecretObject;
}

/** Decodes the JSON Patch of an AdmissionReview answer. */
export function patchOf(response: { patch?: string }): unknown[] {
  return response.patch ? JSON.parse(Buffer.from(response.patch, "base64").toString("utf8")) : [];
}

export function decodeDockerConfig(
  base64: string | undefined,
): { auths: Record<string, { username: string; password: string; auth: string }> } & Record<
  string,
  unknown
> {
  return JSON.parse(Buffer.from(base64 ?? "", "base64").toString("utf8"));
}

/** A minimal valid cluster record (the whole): what the webhook needs to authenticate a cluster and mint tokens. */
export function clusterRecord(
  clusterId: string,
  tokenSha256: string,
  registries: string[] = [EAST_REGISTRY],
) {
  return {
    clusterId,
    kubeconfig: "apiVersion: v1\nkind: Config\n",
    webhookTokenSha256: [tokenSha256],
    registries,
  };
}
