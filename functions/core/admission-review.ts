/**
 * The admission.k8s.io/v1 AdmissionReview wire format: decoding with a schema, and the three
 * answers a mutating webhook gives (allow, deny, patch).
 */
import * as v from "valibot";
import type { JsonPatchOperation } from "./patch.ts";
import { type Parsed, parseJson, parseWith } from "./validation.ts";

const GroupVersionResource = v.object({
  group: v.string(),
  version: v.string(),
  resource: v.string(),
});

const GroupVersionKind = v.object({ group: v.string(), version: v.string(), kind: v.string() });

const AdmissionRequestSchema = v.looseObject({
  uid: v.pipe(v.string(), v.nonEmpty(), v.maxLength(256)),
  kind: GroupVersionKind,
  resource: GroupVersionResource,
  subResource: v.optional(v.string()),
  namespace: v.optional(v.string()),
  name: v.optional(v.string()),
  operation: v.picklist(["CREATE", "UPDATE", "DELETE", "CONNECT"]),
  object: v.optional(v.unknown()),
  oldObject: v.optional(v.unknown()),
  dryRun: v.optional(v.boolean()),
});

export type AdmissionRequest = v.InferOutput<typeof AdmissionRequestSchema>;

const AdmissionReviewSchema = v.looseObject({
  apiVersion: v.literal("admission.k8s.io/v1"),
  kind: v.literal("AdmissionReview"),
  request: AdmissionRequestSchema,
});

export function decodeAdmissionReview(body: string): Parsed<AdmissionRequest> {
  const json = parseJson(body);
  if (!json.ok) return json;
  const review = parseWith(AdmissionReviewSchema, json.value);
  return review.ok ? { ok: true, value: review.value.request } : review;
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: { readonly code: number; readonly message: string };
  readonly patchType?: "JSONPatch";
  /** Base64 of the JSON Patch document. */
  readonly patch?: string;
}

export function allow(uid: string): AdmissionResponse {
  return { uid, allowed: true };
}

export function deny(uid: string, code: number, message: string): AdmissionResponse {
  return { uid, allowed: false, status: { code, message } };
}

export function allowWithPatch(
  uid: string,
  operations: readonly JsonPatchOperation[],
): AdmissionResponse {
  return {
    uid,
    allowed: true,
    patchType: "JSONPatch",
    patch: Buffer.from(JSON.stringify(operations)).toString("base64"),
  };
}

export function reviewResponse(response: AdmissionResponse) {
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response } as const;
}
