/**
 * The parts of a Kubernetes Secret the webhook reads, as a schema: what an AdmissionReview carries
 * as its object, and what a JSON Patch is built against. Pure.
 */
import * as v from "valibot";

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
