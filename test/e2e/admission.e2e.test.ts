/**
 * The admission flow end to end: a real kube-apiserver calls the webhook (served by the local
 * function-URL server exactly as Lambda would run it), which mints tokens from the ECR stand-in.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ApiException, type CoreV1Api, type V1Secret } from "@kubernetes/client-node";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { contractNames } from "../../functions/core/contract.ts";
import type { FunctionUrlEvent } from "../../functions/webhook/http.ts";
import type { EcrStandIn } from "../../testbed/ecr-stand-in.ts";
import { decodeDockerConfig, newWebhookToken } from "../support/admission.ts";
import { EAST, names, retireNamespace, startWebhookHarness, WEST } from "./webhook-harness.ts";

const WRONG_PREFIX = "wrong-token.e2e.ecr-anywhere.local";
const wrongNames = contractNames(WRONG_PREFIX);
const FIXTURES = join(import.meta.dirname, "../fixtures");

const motoUrl = inject("motoUrl");
let harness: Awaited<ReturnType<typeof startWebhookHarness>>;
let ecr: EcrStandIn;
let core: CoreV1Api;
let events: FunctionUrlEvent[];

beforeAll(async () => {
  harness = await startWebhookHarness(motoUrl, inject("adminKubeconfig"), "e2e");
  ({ ecr, core, events } = harness);
  await core.createNamespace({
    body: { metadata: { name: "apps", labels: { [names.namespaceLabel]: "enabled" } } },
  });
  await core.createNamespace({ body: { metadata: { name: "plain" } } });
  await core.createNamespace({
    body: { metadata: { name: "wrong-token", labels: { [wrongNames.namespaceLabel]: "enabled" } } },
  });
  // Registered first: once the second is seen to work, the API server has both.
  await harness.register({
    name: "ecr-anywhere-wrong-token",
    clusterId: "e2e",
    token: newWebhookToken().token,
    labelPrefix: WRONG_PREFIX,
  });
  await harness.register({
    name: "ecr-anywhere",
    clusterId: "e2e",
    token: harness.token,
    probeNamespace: "apps",
  });
});

afterAll(async () => {
  for (const namespace of ["apps", "plain", "wrong-token"])
    if (core) await retireNamespace(core, namespace);
  await harness?.stop();
});

beforeEach(() => {
  events.length = 0;
  ecr.reset();
  harness.reset();
});

function managed(name: string, extra: Partial<V1Secret> = {}, prefixNames = names): V1Secret {
  return {
    metadata: { name, labels: { [prefixNames.managedLabel]: "true" } },
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": Buffer.from("junk").toString("base64") },
    ...extra,
  };
}

async function refusal(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ApiException) {
      const body = typeof error.body === "string" ? JSON.parse(error.body) : error.body;
      return { code: error.code, message: body.message };
    }
    throw error;
  }
  throw new Error("the API server accepted the request");
}

function reviewsSent(): { request: Record<string, unknown> }[] {
  return events.map((event) =>
    JSON.parse(
      event.isBase64Encoded
        ? Buffer.from(event.body ?? "", "base64").toString()
        : (event.body ?? ""),
    ),
  );
}

describe("admission through a real kube-apiserver", () => {
  it("stores a valid dockerconfig and the contract's annotations for a managed Secret", async () => {
    const created = await core.createNamespacedSecret({
      namespace: "apps",
      body: managed("ecr-pull"),
    });
    const stored = await core.readNamespacedSecret({ name: "ecr-pull", namespace: "apps" });
    expect(stored.metadata?.resourceVersion).toBe(created.metadata?.resourceVersion);
    const config = decodeDockerConfig(stored.data?.[".dockerconfigjson"]);
    expect(Object.keys(config.auths).sort()).toEqual([WEST, EAST].sort());
    const eastPassword = ecr.lastPassword.get("us-east-1");
    expect(config.auths[EAST]).toEqual({
      username: "AWS",
      password: eastPassword,
      auth: Buffer.from(`AWS:${eastPassword}`).toString("base64"),
    });
    expect(config.auths[WEST]?.password).toBe(ecr.lastPassword.get("eu-west-1"));
    const annotations = stored.metadata?.annotations ?? {};
    const expiresAt = Date.parse(annotations[names.expiresAtAnnotation] ?? "");
    expect(expiresAt).toBeGreaterThan(Date.now() + 11 * 3600_000);
    expect(Date.parse(annotations[names.updatedAtAnnotation] ?? "")).toBeLessThanOrEqual(
      Date.now(),
    );
    expect(events).toHaveLength(1);
    await saveFixture("admission-review-create.json", reviewsSent()[0]);
  });

  it("never calls the webhook for unlabelled Secrets or labelled Secrets in unlabelled namespaces", async () => {
    // Without the webhook the API server validates the content, so these must be real JSON.
    const junk = Buffer.from('{"auths":{}}').toString("base64");
    await core.createNamespacedSecret({
      namespace: "apps",
      body: {
        metadata: { name: "unlabelled" },
        type: "kubernetes.io/dockerconfigjson",
        data: { ".dockerconfigjson": junk },
      },
    });
    await core.createNamespacedSecret({
      namespace: "plain",
      body: managed("elsewhere", { data: { ".dockerconfigjson": junk } }),
    });
    expect(
      (await core.readNamespacedSecret({ name: "unlabelled", namespace: "apps" })).data?.[
        ".dockerconfigjson"
      ],
    ).toBe(junk);
    const elsewhere = await core.readNamespacedSecret({ name: "elsewhere", namespace: "plain" });
    expect(elsewhere.data?.[".dockerconfigjson"]).toBe(junk);
    expect(elsewhere.metadata?.annotations).toBeUndefined();
    expect(events).toHaveLength(0);
  });

  it("refuses a managed Secret of the wrong type with the webhook's message", async () => {
    const { code, message } = await refusal(
      core.createNamespacedSecret({
        namespace: "apps",
        body: managed("opaque", { type: "Opaque", data: { key: "dmFsdWU=" } }),
      }),
    );
    expect(code).toBe(400);
    expect(message).toBe(
      'admission webhook "secrets.ecr-anywhere.centml.ai" denied the request: ecr-anywhere: Secret apps/opaque is labelled ecr-anywhere.centml.ai/managed=true but has type "Opaque"; managed Secrets must have type kubernetes.io/dockerconfigjson',
    );
  });

  it("refuses creation with an actionable message when ECR fails", async () => {
    ecr.behaviour = "deny";
    const { code, message } = await refusal(
      core.createNamespacedSecret({ namespace: "apps", body: managed("ecr-down") }),
    );
    expect(code).toBe(403);
    expect(message).toMatch(
      /^admission webhook "secrets\.ecr-anywhere\.centml\.ai" denied the request: ecr-anywhere: AWS denied ecr:GetAuthorizationToken in (eu-west-1|us-east-1) \(AccessDeniedException\)/,
    );
    await expect(
      core.readNamespacedSecret({ name: "ecr-down", namespace: "apps" }),
    ).rejects.toMatchObject({ code: 404 });

    ecr.behaviour = "throttle";
    harness.reset();
    const throttled = await refusal(
      core.createNamespacedSecret({ namespace: "apps", body: managed("ecr-throttled") }),
    );
    expect(throttled.code).toBe(429);
    expect(throttled.message).toContain("ECR is throttling GetAuthorizationToken");
  });

  it("refuses labelled Secrets when the URL's token is wrong, and leaves unrelated Secrets alone", async () => {
    const { message } = await refusal(
      core.createNamespacedSecret({
        namespace: "wrong-token",
        body: managed("refused", {}, wrongNames),
      }),
    );
    expect(message).toContain(`failed calling webhook "secrets.${WRONG_PREFIX}"`);
    expect(message).toContain("Forbidden");
    await core.createNamespacedSecret({
      namespace: "wrong-token",
      body: { metadata: { name: "unrelated" }, stringData: { a: "b" } },
    });
    expect(
      (await core.readNamespacedSecret({ name: "unrelated", namespace: "wrong-token" })).data?.a,
    ).toBe(Buffer.from("b").toString("base64"));
  });

  it("keeps the user's other data keys, annotations and non-ECR auth entries on UPDATE", async () => {
    await core.createNamespacedSecret({ namespace: "apps", body: managed("updated") });
    const current = await core.readNamespacedSecret({ name: "updated", namespace: "apps" });
    const config = decodeDockerConfig(current.data?.[".dockerconfigjson"]);
    config.auths["ghcr.io"] = {
      username: "me",
      password: "ghcr-password",
      auth: Buffer.from("me:ghcr-password").toString("base64"),
    };
    const updatedBody: V1Secret = {
      ...current,
      metadata: {
        ...current.metadata,
        annotations: { ...current.metadata?.annotations, "team.example.com/owner": "platform" },
      },
      data: {
        ...current.data,
        ".dockerconfigjson": Buffer.from(JSON.stringify(config)).toString("base64"),
        "extra-key": Buffer.from("keep me").toString("base64"),
      },
    };
    events.length = 0;
    await core.replaceNamespacedSecret({ name: "updated", namespace: "apps", body: updatedBody });
    const stored = await core.readNamespacedSecret({ name: "updated", namespace: "apps" });
    const storedConfig = decodeDockerConfig(stored.data?.[".dockerconfigjson"]);
    expect(storedConfig.auths["ghcr.io"]).toEqual(config.auths["ghcr.io"]);
    expect(Object.keys(storedConfig.auths).sort()).toEqual([WEST, EAST, "ghcr.io"].sort());
    expect(stored.data?.["extra-key"]).toBe(Buffer.from("keep me").toString("base64"));
    expect(stored.metadata?.annotations?.["team.example.com/owner"]).toBe("platform");
    expect(stored.metadata?.labels?.[names.managedLabel]).toBe("true");
    await saveFixture("admission-review-update.json", reviewsSent()[0]);
  });

  it("works for server-side dry runs without storing anything", async () => {
    const dryRun = await core.createNamespacedSecret({
      namespace: "apps",
      body: managed("dry"),
      dryRun: "All",
    });
    expect(dryRun.metadata?.annotations?.[names.expiresAtAnnotation]).toBeDefined();
    expect(Object.keys(decodeDockerConfig(dryRun.data?.[".dockerconfigjson"]).auths)).toHaveLength(
      2,
    );
    await expect(
      core.readNamespacedSecret({ name: "dry", namespace: "apps" }),
    ).rejects.toMatchObject({ code: 404 });
    const [review] = reviewsSent();
    expect(review?.request.dryRun).toBe(true);
    await saveFixture("admission-review-dry-run.json", review);
  });
});

/**
 * Real AdmissionReview bodies become unit-test fixtures, with every credential scrubbed. With
 * RECORD_FIXTURES=1 they are (re)written; otherwise the committed fixture must still have the shape
 * the API server sends, so a newer kube-apiserver cannot drift away from what the unit tests use.
 */
async function saveFixture(name: string, review: unknown): Promise<void> {
  const scrubbed = scrub(review);
  const path = join(FIXTURES, name);
  if (process.env.RECORD_FIXTURES === "1") {
    await mkdir(FIXTURES, { recursive: true });
    await writeFile(path, `${JSON.stringify(scrubbed, null, 2)}\n`);
    return;
  }
  const committed = JSON.parse(await readFile(path, "utf8"));
  expect(shape(scrubbed)).toEqual(shape(committed));
}

function scrub(review: unknown): unknown {
  return JSON.parse(JSON.stringify(review), (key, value) => {
    if (key === ".dockerconfigjson" && typeof value === "string") {
      let config: ReturnType<typeof decodeDockerConfig>;
      try {
        config = decodeDockerConfig(value);
      } catch {
        return value; // junk a test wrote, not a credential
      }
      for (const entry of Object.values(config.auths)) {
        if (entry.password) entry.password = "scrubbed";
        if (entry.auth)
          entry.auth = Buffer.from(`${entry.username ?? "AWS"}:scrubbed`).toString("base64");
      }
      return Buffer.from(JSON.stringify(config)).toString("base64");
    }
    return value;
  });
}

function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length > 0 ? [shape(value[0])] : [];
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(
          ([key]) =>
            ![
              "uid",
              "resourceVersion",
              "creationTimestamp",
              "managedFields",
              "time",
              "annotations",
              "data",
            ].includes(key),
        )
        .map(([key, inner]) => [key, shape(inner)])
        .sort(([a], [b]) => String(a).localeCompare(String(b))),
    );
  }
  return typeof value;
}
