/** Decisions and patches on AdmissionReviews recorded from a real kube-apiserver (test/fixtures). */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import jsonPatch from "fast-json-patch";
import { describe, expect, it } from "vitest";
import { decideAdmission, secretChanges } from "../../functions/core/admission.ts";
import { decodeAdmissionReview } from "../../functions/core/admission-review.ts";
import { buildSecretPatch } from "../../functions/core/patch.ts";
import type { SecretObject } from "../../functions/core/secret.ts";
import { decodeDockerConfig, names } from "../support/admission.ts";

const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const WEST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

function fixture(name: string) {
  const text = readFileSync(join(import.meta.dirname, "../fixtures", name), "utf8");
  const decoded = decodeAdmissionReview(text);
  if (!decoded.ok) throw new Error(`${name}: ${decoded.error}`);
  return decoded.value;
}

function mutate(name: string): { request: ReturnType<typeof fixture>; stored: SecretObject } {
  const request = fixture(name);
  const decision = decideAdmission(request, [EAST, WEST], names);
  if (decision.kind !== "mutate")
    throw new Error(`${name}: expected a mutation, got ${decision.kind}`);
  const credentials = decision.registries.map((registry) => ({
    host: registry.host,
    username: "AWS",
    password: `fresh-${registry.region}`,
  }));
  const changes = secretChanges(
    decision.secret,
    credentials,
    Date.UTC(2030, 0, 1),
    Date.UTC(2029, 11, 31),
    names,
  );
  const stored = jsonPatch.applyPatch(
    structuredClone(request.object),
    buildSecretPatch(decision.secret, changes) as jsonPatch.Operation[],
    true,
    false,
  ).newDocument as SecretObject;
  return { request, stored };
}

describe("recorded AdmissionReviews", () => {
  it.each([
    "admission-review-create.json",
    "admission-review-update.json",
    "admission-review-dry-run.json",
  ])("%s decodes and leads to a mutation for both registries", (name) => {
    const { stored } = mutate(name);
    const config = decodeDockerConfig(stored.data?.[".dockerconfigjson"]);
    expect(config.auths[EAST]?.password).toBe("fresh-us-east-1");
    expect(config.auths[WEST]?.password).toBe("fresh-eu-west-1");
    expect(stored.metadata?.annotations?.[names.expiresAtAnnotation]).toBe("2030-01-01T00:00:00Z");
  });

  it("keeps what the user added on UPDATE: other auths, data keys, annotations, managedFields", () => {
    const { request, stored } = mutate("admission-review-update.json");
    expect(request.operation).toBe("UPDATE");
    const config = decodeDockerConfig(stored.data?.[".dockerconfigjson"]);
    expect(config.auths["ghcr.io"]).toEqual({
      username: "me",
      password: "scrubbed",
      auth: Buffer.from("me:scrubbed").toString("base64"),
    });
    expect(stored.data?.["extra-key"]).toBe(Buffer.from("keep me").toString("base64"));
    expect(stored.metadata?.annotations?.["team.example.com/owner"]).toBe("platform");
    expect((stored.metadata as { managedFields?: unknown }).managedFields).toEqual(
      (request.object as { metadata: { managedFields: unknown } }).metadata.managedFields,
    );
  });

  it("carries the dry-run flag the API server sets", () => {
    expect(fixture("admission-review-dry-run.json").dryRun).toBe(true);
    expect(fixture("admission-review-create.json").dryRun).toBe(false);
  });
});
