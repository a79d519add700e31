import fc from "fast-check";
import jsonPatch from "fast-json-patch";
import { describe, expect, it } from "vitest";
import { secretChanges } from "../../functions/core/admission.ts";
import type { RegistryCredential } from "../../functions/core/dockerconfig.ts";
import { buildSecretPatch, escapePointerSegment } from "../../functions/core/patch.ts";
import type { SecretObject } from "../../functions/core/secret.ts";
import { decodeDockerConfig, names } from "../support/admission.ts";

const HOSTS = [
  "123456789012.dkr.ecr.us-east-1.amazonaws.com",
  "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
  "210987654321.dkr.ecr.us-east-1.amazonaws.com",
];

// Keys as users write them, including the characters JSON Pointer must escape.
const key = fc.oneof(
  fc.string({ minLength: 1, maxLength: 12 }),
  fc.constantFrom("a/b", "~x", "x~1y", "/", "~", ".dockerconfigjson", "__proto__"),
);
const stringMap = fc.dictionary(key, fc.string({ maxLength: 20 }), { maxKeys: 5 });
const authEntry = fc.record({ auth: fc.base64String({ maxLength: 16 }) });
const otherHost = fc.oneof(
  fc.domain(),
  fc.constant("https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
);
const existingDockerConfig = fc.oneof(
  fc.constant(undefined),
  fc.string().map((junk) => Buffer.from(junk).toString("base64")),
  fc
    .record({
      auths: fc.dictionary(fc.oneof(otherHost, fc.constantFrom(...HOSTS)), authEntry, {
        maxKeys: 4,
      }),
      credsStore: fc.option(fc.constant("desktop"), { nil: undefined }),
    })
    .map((config) => Buffer.from(JSON.stringify(config)).toString("base64")),
);

const secretArbitrary = fc
  .record({
    hasMetadata: fc.boolean(),
    labels: fc.option(stringMap, { nil: undefined }),
    annotations: fc.option(stringMap, { nil: undefined }),
    otherData: fc.option(stringMap, { nil: undefined }),
    dockerConfig: existingDockerConfig,
  })
  .map(({ hasMetadata, labels, annotations, otherData, dockerConfig }): SecretObject => {
    const data =
      otherData === undefined && dockerConfig === undefined
        ? undefined
        : {
            ...otherData,
            ...(dockerConfig === undefined ? {} : { ".dockerconfigjson": dockerConfig }),
          };
    return {
      apiVersion: "v1",
      kind: "Secret",
      ...(hasMetadata
        ? {
            metadata: {
              name: "s",
              ...(labels ? { labels } : {}),
              ...(annotations ? { annotations } : {}),
            },
          }
        : {}),
      type: "kubernetes.io/dockerconfigjson",
      ...(data ? { data } : {}),
    };
  });

const credentialsArbitrary = fc
  .subarray(HOSTS, { minLength: 1 })
  .map((hosts): RegistryCredential[] =>
    hosts.map((host) => ({ host, username: "AWS", password: `pw-${host}` })),
  );

describe("buildSecretPatch", () => {
  it("writes exactly the managed credentials and annotations, leaving every other byte as it was", () => {
    fc.assert(
      fc.property(secretArbitrary, credentialsArbitrary, (secret, credentials) => {
        const before = structuredClone(secret);
        const changes = secretChanges(
          secret,
          credentials,
          Date.UTC(2026, 10, 22, 23),
          Date.UTC(2026, 10, 22, 11),
          names,
        );
        const operations = buildSecretPatch(secret, changes);
        const patched = jsonPatch.applyPatch(
          structuredClone(secret),
          jsonPatch.deepClone(operations),
          true,
          false,
        ).newDocument as SecretObject;

        expect(secret).toEqual(before); // building the patch mutates nothing
        // Other data keys, labels and annotations: untouched.
        const { ".dockerconfigjson": _newConfig, ...otherDataAfter } = patched.data ?? {};
        const { ".dockerconfigjson": _oldConfig, ...otherDataBefore } = secret.data ?? {};
        expect(otherDataAfter).toEqual(otherDataBefore);
        expect(patched.metadata?.labels).toEqual(secret.metadata?.labels);
        const annotationsAfter = { ...patched.metadata?.annotations };
        expect(annotationsAfter[names.expiresAtAnnotation]).toBe("2026-11-22T23:00:00Z");
        expect(annotationsAfter[names.updatedAtAnnotation]).toBe("2026-11-22T11:00:00Z");
        delete annotationsAfter[names.expiresAtAnnotation];
        delete annotationsAfter[names.updatedAtAnnotation];
        const annotationsBefore = { ...secret.metadata?.annotations };
        delete annotationsBefore[names.expiresAtAnnotation];
        delete annotationsBefore[names.updatedAtAnnotation];
        expect(annotationsAfter).toEqual(annotationsBefore);

        // The dockerconfig: fresh entries for managed hosts, earlier entries for other hosts kept.
        const config = decodeDockerConfig(patched.data?.[".dockerconfigjson"]);
        for (const { host, password } of credentials) {
          expect(config.auths[host]).toEqual({
            username: "AWS",
            password,
            auth: Buffer.from(`AWS:${password}`).toString("base64"),
          });
        }
        const managed = new Set(credentials.map((credential) => credential.host));
        const previous = previousAuths(secret.data?.[".dockerconfigjson"]);
        for (const [host, entry] of Object.entries(previous)) {
          const bareHost = host.replace(/^https:\/\//, "");
          if (managed.has(bareHost)) continue;
          expect(config.auths[host]).toEqual(entry);
        }
        expect(Object.keys(config.auths).length).toBe(
          managed.size +
            Object.keys(previous).filter((host) => !managed.has(host.replace(/^https:\/\//, "")))
              .length,
        );
      }),
      { numRuns: 500 },
    );
  });

  it("creates data and annotations when the Secret has neither", () => {
    const secret: SecretObject = {
      metadata: { name: "s" },
      type: "kubernetes.io/dockerconfigjson",
    };
    const operations = buildSecretPatch(secret, {
      data: { ".dockerconfigjson": "e30=" },
      annotations: { "a/b": "1" },
    });
    expect(operations).toEqual([
      { op: "add", path: "/data", value: { ".dockerconfigjson": "e30=" } },
      { op: "add", path: "/metadata/annotations", value: { "a/b": "1" } },
    ]);
  });

  it("escapes JSON Pointer segments", () => {
    expect(escapePointerSegment("ecr-anywhere.centml.ai/expires_at")).toBe(
      "ecr-anywhere.centml.ai~1expires_at",
    );
    expect(escapePointerSegment("a~/b")).toBe("a~0~1b");
    const operations = buildSecretPatch(
      { metadata: { annotations: {} }, data: {} },
      { data: { ".dockerconfigjson": "x" }, annotations: { [names.expiresAtAnnotation]: "t" } },
    );
    expect(operations.map((operation) => operation.path)).toEqual([
      "/data/.dockerconfigjson",
      "/metadata/annotations/ecr-anywhere.centml.ai~1expires_at",
    ]);
  });
});

function previousAuths(base64: string | undefined): Record<string, unknown> {
  if (base64 === undefined) return {};
  try {
    const parsed = JSON.parse(Buffer.from(base64, "base64").toString("utf8"));
    return parsed &&
      typeof parsed === "object" &&
      parsed.auths &&
      typeof parsed.auths === "object" &&
      !Array.isArray(parsed.auths)
      ? parsed.auths
      : {};
  } catch {
    return {};
  }
}
