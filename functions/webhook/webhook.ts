/**
 * The webhook's request pipeline: authenticate the cluster, decode the AdmissionReview, decide,
 * fetch tokens, answer with a patch. Everything it calls out to is passed in, so tests and the
 * local function-URL server run exactly this code.
 */

import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { STSClient } from "@aws-sdk/client-sts";
import { ClusterRecordStore, type RecordLookup } from "../adapters/cluster-records.ts";
import {
  CredentialError,
  type EcrToken,
  EcrTokenProvider,
  type TokenSource,
} from "../adapters/ecr-tokens.ts";
import { DynamoTokenStore } from "../adapters/shared-tokens.ts";
import { decideAdmission, secretChanges } from "../core/admission.ts";
import {
  type AdmissionRequest,
  type AdmissionResponse,
  allow,
  allowWithPatch,
  decodeAdmissionReview,
  deny,
  reviewResponse,
} from "../core/admission-review.ts";
import { type AuthFailure, parseWebhookCaller, sourceAllowed, tokenMatches } from "../core/auth.ts";
import type { ClusterRecord } from "../core/cluster-record.ts";
import { type WebhookConfig, webhookConfigFromEnv } from "../core/config.ts";
import { buildSecretPatch } from "../core/patch.ts";
import { type EcrRegistry, endpointKey, tokenEndpointsOf } from "../core/registries.ts";
import { earliest } from "../core/time.ts";
import { SourceBudget } from "../lib/source-budget.ts";
import { count, createTelemetry, type Telemetry } from "../telemetry.ts";
import {
  FORBIDDEN,
  type FunctionUrlEvent,
  type FunctionUrlResult,
  failure,
  json,
  readBody,
} from "./http.ts";

export interface WebhookDependencies {
  readonly config: WebhookConfig;
  readonly records: ClusterRecordStore;
  readonly tokens: EcrTokenProvider;
  readonly telemetry: Telemetry;
  readonly now: () => number;
  /** Failed authentications per source address; a default one is made when omitted. */
  readonly sources?: SourceBudget;
}

/** 30 failed calls a minute from one address is far past any misconfigured cluster's retries. */
const SOURCE_FAILURES_PER_MINUTE = 30;

export interface InvocationContext {
  readonly awsRequestId?: string;
}

export type Webhook = (
  event: FunctionUrlEvent,
  context?: InvocationContext,
) => Promise<FunctionUrlResult>;

export function createWebhook(dependencies: WebhookDependencies): Webhook {
  const deps = {
    ...dependencies,
    sources:
      dependencies.sources ??
      new SourceBudget({
        failuresPerWindow: SOURCE_FAILURES_PER_MINUTE,
        windowMs: 60_000,
        maxSources: 10_000,
        now: dependencies.now,
      }),
  };
  return async (event, context) => {
    try {
      return await serve(event, deps, context?.awsRequestId ?? "local");
    } finally {
      // A rejected request counts nothing (the function URL's own 4xx metric has it).
      if (deps.telemetry.metrics.hasStoredMetrics()) deps.telemetry.metrics.publishStoredMetrics();
    }
  };
}

export interface WebhookOverrides {
  readonly now?: () => number;
  readonly telemetry?: Telemetry;
}

/**
 * The production wiring: AWS SDK clients with the function's own credentials and region (and
 * endpoints from `AWS_ENDPOINT_URL_*`, which is how tests and local runs point it elsewhere).
 */
export function createWebhookFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  overrides: WebhookOverrides = {},
): Webhook {
  const config = webhookConfigFromEnv(env);
  const now = overrides.now ?? Date.now;
  const telemetry = overrides.telemetry ?? createTelemetry("ecr-anywhere-webhook");
  return createWebhook({
    config,
    now,
    telemetry,
    records: new ClusterRecordStore({
      client: new SecretsManagerClient({}),
      namePrefix: config.clusterRecordPrefix,
      ttlMs: config.recordTtlMs,
      now,
      partition: config.partition,
    }),
    tokens: new EcrTokenProvider({
      sts: new STSClient({}),
      now,
      assumeRoleDurationSeconds: config.assumeRoleDurationSeconds,
      ...(config.tokenTable ? { shared: new DynamoTokenStore(config.tokenTable) } : {}),
      onSharedStoreError: (error) => {
        telemetry.logger.warn("shared token store failed: minted instead", {
          error: errorSummary(error),
        });
      },
    }),
  });
}

async function serve(
  event: FunctionUrlEvent,
  deps: WebhookDependencies & { readonly sources: SourceBudget },
  requestId: string,
): Promise<FunctionUrlResult> {
  const { config, telemetry } = deps;
  const { logger, metrics } = telemetry;
  // One deadline for every AWS call of this request keeps the answer inside the API server's timeout.
  const signal = AbortSignal.timeout(config.admissionBudgetMs);

  const sourceIp = event.requestContext.http.sourceIp;
  const rejectCaller = (
    reason: AuthFailure | "invalid-record",
    clusterId?: string,
    detail?: string,
  ) => {
    count(metrics, "AuthFailures");
    // Only strangers (ids no record has, paths no cluster uses) spend the source's budget: a
    // shared egress address must not let anyone lock a real cluster out by guessing its token.
    const usedUp =
      (reason === "unknown-cluster" || reason === "malformed-path") &&
      deps.sources.failed(sourceIp);
    // An invalid record is the operator's mistake, not an attack: say so loudly.
    const log = reason === "invalid-record" ? logger.error.bind(logger) : logger.warn.bind(logger);
    log("webhook caller rejected", { reason, clusterId, detail, sourceIp });
    if (usedUp)
      logger.warn("source address refused for the rest of the minute: too many failed calls", {
        sourceIp,
        failures: SOURCE_FAILURES_PER_MINUTE,
      });
    return FORBIDDEN;
  };
  const rejectRequest = (result: FunctionUrlResult, detail: string) => {
    logger.warn("malformed request", { status: result.statusCode, detail, sourceIp });
    return result;
  };

  const method = event.requestContext.http.method;
  if (method !== "POST") return rejectRequest(failure(405, "Method Not Allowed"), method);
  const caller = parseWebhookCaller(event.rawPath, event.headers?.authorization);
  // A source past its budget is refused before any lookup, silently (logging would be the cost),
  // unless it names a cluster known to exist.
  if (deps.sources.exhausted(sourceIp) && !(caller && deps.records.isKnown(caller.clusterId))) {
    count(metrics, "AuthFailures");
    return FORBIDDEN;
  }
  if (caller === undefined) return rejectCaller("malformed-path");
  const body = readBody(event, config.maxBodyBytes);
  if (!body.ok) return rejectRequest(body.result, "body");

  let lookup: RecordLookup;
  try {
    lookup = (await deps.records.lookup(caller.clusterId, signal)).value;
  } catch (error) {
    logger.error("cannot read the cluster record", {
      clusterId: caller.clusterId,
      error: errorSummary(error),
    });
    return failure(503, "Service Unavailable");
  }
  if (!lookup.found) {
    const reason = lookup.reason === "missing" ? "unknown-cluster" : "invalid-record";
    return rejectCaller(reason, caller.clusterId, lookup.detail);
  }
  const record = lookup.record;
  if (!tokenMatches(caller.token, record.webhookTokenSha256)) {
    return rejectCaller("wrong-token", record.clusterId);
  }
  if (!sourceAllowed(sourceIp, record.allowedSourceCidrs)) {
    return rejectCaller("source-not-allowed", record.clusterId);
  }

  const decoded = decodeAdmissionReview(body.text);
  if (!decoded.ok) {
    return rejectRequest(
      failure(400, `Malformed AdmissionReview: ${decoded.error}`),
      decoded.error,
    );
  }
  count(metrics, "Admissions");
  const request = decoded.value;
  const startedAt = deps.now();
  let response: AdmissionResponse;
  const tokenSources: TokenSources = {};
  try {
    response = await admit(request, record, deps, signal, tokenSources);
  } catch (error) {
    logger.error("admission failed unexpectedly", {
      clusterId: record.clusterId,
      error: errorSummary(error),
    });
    response = deny(
      request.uid,
      500,
      `ecr-anywhere: internal error (request ${requestId}); see the webhook's logs`,
    );
  }
  if (!response.allowed) count(metrics, "Denials");
  if (response.patch !== undefined) count(metrics, "Mutations");
  logger.info("admission", {
    clusterId: record.clusterId,
    uid: request.uid,
    operation: request.operation,
    namespace: request.namespace,
    name: request.name,
    dryRun: request.dryRun === true,
    outcome: response.patch !== undefined ? "mutated" : response.allowed ? "allowed" : "denied",
    status: response.status,
    tokenSources,
    durationMs: deps.now() - startedAt,
  });
  return json(200, reviewResponse(response));
}

/** Where an admission's tokens came from, by source: logged with it, per cluster. */
type TokenSources = Partial<Record<TokenSource, number>>;

async function admit(
  request: AdmissionRequest,
  record: ClusterRecord,
  deps: WebhookDependencies,
  signal: AbortSignal,
  tokenSources: TokenSources,
): Promise<AdmissionResponse> {
  const decision = decideAdmission(request, record.registries, deps.config.names);
  switch (decision.kind) {
    case "ignore":
      return allow(request.uid);
    case "deny":
      return deny(request.uid, decision.code, decision.message);
    case "mutate": {
      const tokens = await tokensFor(decision.registries, record, deps, signal, tokenSources);
      if (tokens instanceof CredentialError) {
        return deny(request.uid, tokens.status, `ecr-anywhere: ${tokens.message}`);
      }
      const byEndpoint = new Map(tokens.map((token) => [endpointKey(token), token]));
      const credentials = decision.registries.flatMap((registry) => {
        const token = byEndpoint.get(endpointKey(registry));
        return token
          ? [{ host: registry.host, username: token.username, password: token.password }]
          : [];
      });
      const expiresAtMs = earliest(tokens.map((token) => token.expiresAtMs));
      const changes = secretChanges(
        decision.secret,
        credentials,
        expiresAtMs,
        deps.now(),
        deps.config.names,
      );
      return allowWithPatch(request.uid, buildSecretPatch(decision.secret, changes));
    }
  }
}

async function tokensFor(
  registries: readonly EcrRegistry[],
  record: ClusterRecord,
  deps: WebhookDependencies,
  signal: AbortSignal,
  tokenSources: TokenSources,
): Promise<EcrToken[] | CredentialError> {
  const { metrics, logger } = deps.telemetry;
  const outcomes = await Promise.allSettled(
    tokenEndpointsOf(registries).map((endpoint) => deps.tokens.tokenFor(record, endpoint, signal)),
  );
  const tokens: EcrToken[] = [];
  for (const outcome of outcomes) {
    if (outcome.status === "rejected") {
      count(metrics, "TokenFetchErrors");
      const error =
        outcome.reason instanceof CredentialError
          ? outcome.reason
          : new CredentialError(
              502,
              `unexpected error fetching ECR credentials: ${errorSummary(outcome.reason)}`,
            );
      logger.warn("cannot fetch ECR credentials", {
        clusterId: record.clusterId,
        status: error.status,
        error: error.message,
      });
      return error;
    }
    const { source } = outcome.value;
    // Metrics keep the contract's two counts; which cache served it goes in the admission line.
    count(metrics, source === "loaded" ? "TokenFetches" : "TokenCacheHits");
    tokenSources[source] = (tokenSources[source] ?? 0) + 1;
    tokens.push(outcome.value.token);
  }
  return tokens;
}

/** Name and message only: stacks and SDK metadata stay out of logs. */
function errorSummary(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 500) : "unknown error";
}
