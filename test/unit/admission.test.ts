import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decideAdmission } from "../../functions/core/admission.ts";
import { decodeAdmissionReview } from "../../functions/core/admission-review.ts";
import { admissionReview, managedSecret, names } from "../support/admission.ts";

const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const WEST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

function decide(review: ReturnType<typeof admissionReview>, allowed = [EAST, WEST]) {
  const decoded = decodeAdmissionReview(JSON.stringify(review));
  if (!decoded.ok) throw new Error(decoded.error);
  return decideAdmission(decoded.value, allowed, names);
}

describe("decideAdmission", () => {
  it("mutates a managed dockerconfigjson Secret on CREATE and UPDATE", () => {
    expect(decide(admissionReview())).toMatchObject({
      kind: "mutate",
      registries: [{ host: EAST }, { host: WEST }],
    });
    expect(decide(admissionReview({ operation: "UPDATE" }))).toMatchObject({ kind: "mutate" });
    expect(decide(admissionReview({ dryRun: true }))).toMatchObject({ kind: "mutate" });
  });

  it("ignores other resources, subresources and operations", () => {
    expect(
      decide(admissionReview({ resource: { group: "", version: "v1", resource: "configmaps" } })),
    ).toMatchObject({ kind: "ignore" });
    expect(
      decide(
        admissionReview({ resource: { group: "example.com", version: "v1", resource: "secrets" } }),
      ),
    ).toMatchObject({ kind: "ignore" });
    expect(decide(admissionReview({ subResource: "status" }))).toMatchObject({ kind: "ignore" });
    expect(decide(admissionReview({ operation: "DELETE" }))).toMatchObject({ kind: "ignore" });
  });

  it("re-checks the managed label instead of trusting the cluster's selector", () => {
    for (const labels of [
      {},
      { [names.managedLabel]: "false" },
      { [names.managedLabel]: "True" },
    ]) {
      const object = managedSecret({ metadata: { name: "x", namespace: "apps", labels } });
      expect(decide(admissionReview({ object }))).toEqual({
        kind: "ignore",
        reason: "not managed",
      });
    }
  });

  it("denies a managed Secret of another type, saying which type is needed", () => {
    const decision = decide(admissionReview({ object: managedSecret({ type: "Opaque" }) }));
    expect(decision).toEqual({
      kind: "deny",
      code: 400,
      message:
        'ecr-anywhere: Secret apps/ecr-pull is labelled ecr-anywhere.centml.ai/managed=true but has type "Opaque"; managed Secrets must have type kubernetes.io/dockerconfigjson',
    });
  });

  it("honours the registries annotation and denies hosts outside the record by name", () => {
    const narrowed = managedSecret({
      metadata: {
        name: "x",
        namespace: "apps",
        labels: { [names.managedLabel]: "true" },
        annotations: { [names.registriesAnnotation]: WEST },
      },
    });
    expect(decide(admissionReview({ object: narrowed }))).toMatchObject({
      kind: "mutate",
      registries: [{ host: WEST }],
    });
    const refused = "999999999999.dkr.ecr.us-east-1.amazonaws.com";
    const outside = managedSecret({
      metadata: {
        name: "x",
        namespace: "apps",
        labels: { [names.managedLabel]: "true" },
        annotations: { [names.registriesAnnotation]: refused },
      },
    });
    expect(decide(admissionReview({ object: outside }))).toMatchObject({
      kind: "deny",
      code: 403,
      message: expect.stringContaining(`may not use registry ${refused}`),
    });
  });

  it("denies a Secret object that is not shaped like one", () => {
    const decision = decide(admissionReview({ object: { metadata: { labels: { a: 1 } } } }));
    expect(decision).toMatchObject({
      kind: "deny",
      code: 400,
      message: expect.stringContaining("metadata.labels.a"),
    });
  });

  it.each([
    ["data", { metadata: { labels: { [names.managedLabel]: "true" } }, data: [] }],
    ["annotations", { metadata: { labels: { [names.managedLabel]: "true" }, annotations: [] } }],
  ])(
    "denies %s given as an array, which no patch could extend (found by the fuzzer)",
    (field, object) => {
      const decision = decide(
        admissionReview({ object: { type: "kubernetes.io/dockerconfigjson", ...object } }),
      );
      expect(decision).toMatchObject({
        kind: "deny",
        code: 400,
        message: expect.stringMatching(new RegExp(`malformed: .*${field}`)),
      });
    },
  );
});

describe("decodeAdmissionReview", () => {
  it("rejects malformed reviews with a reason and never throws (fuzzed)", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.anything().map((value) => JSON.stringify(value) ?? ""),
        ),
        (body) => {
          const decoded = decodeAdmissionReview(body);
          if (!decoded.ok) expect(decoded.error.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("rejects a valid review with any one required field broken (fuzzed)", () => {
    const fields = [
      "apiVersion",
      "kind",
      "request",
      "request.uid",
      "request.operation",
      "request.resource",
      "request.kind",
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...fields),
        fc.oneof(fc.constant(undefined), fc.integer(), fc.constant(null), fc.array(fc.string())),
        (field, value) => {
          const review: Record<string, unknown> = structuredClone(admissionReview());
          const [head = "", tail] = field.split(".");
          if (tail === undefined) review[head] = value;
          else (review[head] as Record<string, unknown>)[tail] = value;
          const decoded = decodeAdmissionReview(JSON.stringify(review));
          expect(decoded.ok).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("names the broken field without echoing its value", () => {
    const review = admissionReview();
    const broken = {
      ...review,
      request: { ...review.request, operation: "EXFILTRATE-secret-value" },
    };
    const decoded = decodeAdmissionReview(JSON.stringify(broken));
    expect(decoded.ok).toBe(false);
    expect(!decoded.ok && decoded.error).toContain("request.operation");
    expect(!decoded.ok && decoded.error).not.toContain("EXFILTRATE");
  });
});

describe("decodeAdmissionReview literals", () => {
  it("rejects other API versions, kinds and operations", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("apiVersion", "kind", "operation"),
        fc.string(),
        (field, value) => {
          const review = admissionReview();
          const broken =
            field === "operation"
              ? { ...review, request: { ...review.request, operation: value } }
              : { ...review, [field]: value };
          const valid: Record<string, string> = {
            apiVersion: "admission.k8s.io/v1",
            kind: "AdmissionReview",
          };
          fc.pre(
            value !== valid[field] && !["CREATE", "UPDATE", "DELETE", "CONNECT"].includes(value),
          );
          expect(decodeAdmissionReview(JSON.stringify(broken)).ok).toBe(false);
        },
      ),
    );
  });
});
