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

// valibot's record takes an array for an empty object ([] parses to {}); a patch built for that
// object would not apply to the array the API server holds (found by `npm run fuzz`).
const StringMap = v.pipe(
  v.unknown(),
  v.check((value) => !Array.isArray(value), "expected an object, not an array"),
  v.record(v.string(), v.string()),
);

/** The parts of a Secret the webhook reads; everything else passes through untouched. */
export const SecretSchema = v.looseObject({
  metadata: v.optional(
    v.looseObject({
      name: v.optional(v.string()),
      namespace: v.optional(v.string()),
      labels: v.optional(v.nullable(StringMap)),
      annotations: v.optional(v.nullable(StringMap)),
    }),
  ),
  type: v.optional(v.string()),
  data: v.optional(v.nullable(StringMap)),
});

export type SecretObject = v.InferOutput<typeof SecretSchema>;

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
