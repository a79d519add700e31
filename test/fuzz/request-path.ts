/**
 * The fuzz target: one request through the webhook's whole path (readBody, caller parsing, record
 * lookup, decode, decide, patch build) with stand-in AWS clients, plus the cluster-record parsers
 * (both items of layout 2) and the kubeconfig checks. Each check throws on a broken property; `npm run fuzz` drives it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { ECRClient } from "@aws-sdk/client-ecr";
import type { STSClient } from "@aws-sdk/client-sts";
import jsonPatch, { type Operation } from "fast-json-patch";
import { parse } from "yaml";
import { ClusterRecordStore } from "../../functions/adapters/cluster-records.ts";
import { EcrMinter } from "../../functions/adapters/ecr-minter.ts";
import { EcrPublicMinter } from "../../functions/adapters/ecr-public-minter.ts";
import { EcrTokenProvider } from "../../functions/adapters/ecr-tokens.ts";
import { toItem } from "../../functions/adapters/record-items.ts";
import {
  CLUSTER_RECORD_LAYOUT,
  parseRefresherItem,
  parseWebhookItem,
  splitClusterRecord,
} from "../../functions/core/cluster-record.ts";
import { webhookConfigFromEnv } from "../../functions/core/config.ts";
import { checkKubeconfig } from "../../functions/core/kubeconfig.ts";
import { parseJson } from "../../functions/core/validation.ts";
import { toFunctionUrlEvent } from "../../functions/local/function-url-event.ts";
import { createTelemetry } from "../../functions/telemetry.ts";
import { createWebhook } from "../../functions/webhook/webhook.ts";
import { clusterRecord, newWebhookToken } from "../support/admission.ts";

/** Never to be seen in an answer or a log line. */
export const WEBHOOK_TOKEN = newWebhookToken();
export const ECR_PASSWORD = "ecr-password-sentinel-0c5f";
export const CLUSTER_ID = "fuzzed";

/** The webhook's item as its table holds it. */
const webhookItem = toItem({
  layout: CLUSTER_RECORD_LAYOUT,
  ...splitClusterRecord(clusterRecord(CLUSTER_ID, WEBHOOK_TOKEN.sha256)).webhook,
});

/** The recorded real AdmissionReviews: the seed corpus. */
export const SEEDS: readonly unknown[] = [
  "admission-review-create.json",
  "admission-review-update.json",
  "admission-review-dry-run.json",
].map((name) => JSON.parse(readFileSync(join(import.meta.dirname, "../fixtures", name), "utf8")));

const dynamodb = {
  send: async () => ({ Item: webhookItem }),
  destroy: () => undefined,
} as unknown as DynamoDBClient;
const ecr = {
  send: async () => ({
    authorizationData: [
      {
        authorizationToken: Buffer.from(`AWS:${ECR_PASSWORD}`).toString("base64"),
        expiresAt: new Date(Date.now() + 12 * 3600_000),
      },
    ],
  }),
  destroy: () => undefined,
} as unknown as ECRClient;

const config = webhookConfigFromEnv({ AWS_REGION: "us-east-1" });
const webhook = createWebhook({
  config,
  now: Date.now,
  telemetry: createTelemetry("ecr-anywhere-webhook"),
  records: new ClusterRecordStore({
    client: dynamodb,
    table: config.webhookRecordTable,
    ttlMs: 60_000,
    now: Date.now,
    checkKnownNames: false,
  }),
  tokens: new EcrTokenProvider({
    sts: {} as STSClient,
    now: Date.now,
    minters: [new EcrMinter(() => ecr), new EcrPublicMinter()],
  }),
});

export interface FuzzedRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: string;
  readonly base64: boolean;
  /** Varied, or the first few strangers would spend one address's budget for the whole run. */
  readonly sourceIp: string;
}

/**
 * One request; throws when a property breaks, else says how it ended (for the run's summary).
 * `logged` is what the webhook wrote meanwhile.
 */
export async function checkRequest(input: FuzzedRequest, logged: () => string): Promise<string> {
  const headers: Record<string, string> = {
    "content-type": input.base64 ? "application/octet-stream" : "application/json",
  };
  if (input.authorization !== undefined) headers.authorization = input.authorization;
  const event = toFunctionUrlEvent({
    method: input.method,
    url: input.path,
    headers,
    body: Buffer.from(input.body),
    sourceIp: input.sourceIp,
  });
  // Never throws past the handler.
  const result = await webhook(event, { awsRequestId: "fuzz" });
  const status = result.statusCode ?? 0;
  if (status >= 500 && status !== 503) throw new Error(`answered ${status}`);
  const text = `${result.body ?? ""}\n${logged()}`;
  for (const secret of [WEBHOOK_TOKEN.token, ECR_PASSWORD])
    if (text.includes(secret)) throw new Error("a token or credential was echoed");
  if (status !== 200) return `HTTP ${status}`;
  const review = JSON.parse(result.body ?? "{}") as {
    response?: { patch?: string; allowed?: boolean };
  };
  const patch = review.response?.patch;
  if (patch === undefined) return review.response?.allowed ? "allowed" : "denied";
  const request = (JSON.parse(input.body) as { request?: { object?: unknown } }).request;
  const operations = JSON.parse(Buffer.from(patch, "base64").toString("utf8")) as Operation[];
  // Applies cleanly to the object it came from (throws otherwise).
  jsonPatch.applyPatch(structuredClone(request?.object ?? {}), operations, true, false);
  return "mutated";
}

/**
 * The record parsers and the kubeconfig checks answer every input with a result, never a throw,
 * and a kubeconfig they accept holds none of the keys the client library would act on.
 */
export function checkParsers(text: string, dangerousKeys: readonly string[] = []): void {
  const json = parseJson(text);
  const item = json.ok ? json.value : text;
  for (const parse of [parseWebhookItem, parseRefresherItem]) {
    const record = parse(item, CLUSTER_ID);
    if (typeof record.ok !== "boolean") throw new Error(`${parse.name} returned no verdict`);
  }
  const kubeconfig = checkKubeconfig(text);
  if (typeof kubeconfig.ok !== "boolean") throw new Error("checkKubeconfig returned no verdict");
  if (!kubeconfig.ok) return;
  const found = keysIn(parse(text, { logLevel: "silent" })).filter((key) =>
    dangerousKeys.includes(key),
  );
  if (found.length > 0) throw new Error(`a kubeconfig with ${found.join(", ")} was accepted`);
}

function keysIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keysIn);
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([key, item]) => [key, ...keysIn(item)]);
}

export const VALID_PATH = `/v1/clusters/${CLUSTER_ID}/${WEBHOOK_TOKEN.token}`;
export const HEADER_PATH = `/v1/clusters/${CLUSTER_ID}`;
