/**
 * The webhook's request pipeline: authenticate the cluster, decode the AdmissionReview, decide,
 * fetch tokens, answer with a patch. Everything it calls out to is passed in, so tests and the
 * local function-URL server run exactly this code.
 */

import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { STSClient } from "@aws-sdk/client-sts";
import packageJson from "../../package.json" with { type: "json" };
import { DynamoBrokerKeyReader } from "../adapters/broker-key-store.ts";
import { ClusterRecordStore, type RecordLookup } from "../adapters/cluster-records.ts";
import { CredentialError, EcrTokenProvider, type TokenSource } from "../adapters/ecr-tokens.ts";
import { DynamoTokenStore } from "../adapters/shared-tokens.ts";
import { StoredKeyBroker } from "../adapters/token-sessions.ts";
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
import {
  type AuthFailure,
  parseWebhookCaller,
  sourceAllowed,
  tokenMatches,
  type WebhookCaller,
} from "../core/auth.ts";
import type { WebhookRecord } from "../core/cluster-record.ts";
import { type WebhookConfig, webhookConfigFromEnv } from "../core/config.ts";
import { answerHealth } from "../core/health.ts";
import { buildSecretPatch } from "../core/patch.ts";
import { type EcrRegistry, endpointKey, endpointOf, tokenEndpointsOf } from "../core/registries.ts";
import { earliest } from "../core/time.ts";
import type { EcrToken } from "../core/tokens.ts";
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
  readonly records: Pick<ClusterRecordStore, "lookup" | "isKnown">;
  /** Tokens, for the registry kinds it serves (hosts of other kinds are not registries here). */
  readonly tokens: Pick<EcrTokenProvider, "tokenFor" | "kinds">;
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
    const requestId = context?.awsRequestId ?? "local";
    try {
      return await serve(event, deps, requestId);
    } catch (error) {
      return internalError(error, deps.telemetry, requestId);
    } finally {
      publishMetrics(deps.telemetry, requestId);
    }
  };
}

/**
 * What nothing in the pipeline expected (a bug, or a dependency failing in a way no step
 * handles): a logged 500 that names the request, never a rejected invocation, whose answer would
 * be Lambda's bare error.
 */
function internalError(error: unknown, telemetry: Telemetry, requestId: string): FunctionUrlResult {
  const summary = errorSummary(error);
  try {
    telemetry.logger.error("request failed unexpectedly", { requestId, error: summary });
  } catch {
    // The logger is what failed: stderr still reaches the function's log group.
    console.error(`request ${requestId} failed unexpectedly: ${summary}`);
  }
  return failure(500, internalErrorMessage(requestId));
}

function internalErrorMessage(requestId: string): string {
  return `ecr-anywhere: internal error (request ${requestId}); see the webhook's logs`;
}

function publishMetrics({ metrics, logger }: Telemetry, requestId: string): void {
  try {
    // A rejected request counts nothing (the function URL's own 4xx metric has it).
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  } catch (error) {
    logger.warn("metrics not published", { requestId, error: errorSummary(error) });
  }
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
  const telemetry =
    overrides.telemetry ?? createTelemetry("ecr-anywhere-webhook", config.metricsInstance);
  // One client for the record table and the token table.
  const dynamodb = new DynamoDBClient({});
  return createWebhook({
    config,
    now,
    telemetry,
    records: new ClusterRecordStore({
      client: dynamodb,
      table: config.webhookRecordTable,
      ttlMs: config.recordTtlMs,
      now,
      partition: config.partition,
    }),
    tokens: tokenProviderFor(config, now, telemetry, dynamodb),
  });
}

/**
 * Tokens with the function's own STS client; the shared table and, with a broker user, the
 * broker's key in one of its items (the record table's DynamoDB client for both).
 */
function tokenProviderFor(
  config: WebhookConfig,
  now: () => number,
  telemetry: Telemetry,
  dynamo: DynamoDBClient,
): EcrTokenProvider {
  const table = config.tokenTable;
  return new EcrTokenProvider({
    sts: new STSClient({}),
    now,
    scoping: config.tokenScoping,
    pullThroughCache: config.pullThroughCache,
    assumeRoleDurationSeconds: config.assumeRoleDurationSeconds,
    ...(table ? { shared: new DynamoTokenStore(table, dynamo) } : {}),
    ...(table && config.brokerUser
      ? { broker: StoredKeyBroker.prefetched(new DynamoBrokerKeyReader(table, dynamo), now) }
      : {}),
    onSharedStoreError: (error) => {
      telemetry.logger.warn("shared token store failed: minted instead", {
        error: errorSummary(error),
      });
    },
  });
}

type Deps = WebhookDependencies & { readonly sources: SourceBudget };

/** What every step of one request needs. */
interface RequestScope {
  readonly deps: Deps;
  readonly requestId: string;
  readonly sourceIp: string;
  /** One deadline for every AWS call of this request keeps the answer inside the API server's timeout. */
  readonly signal: AbortSignal;
}

/** A step hands its result on, or answers the request itself. */
type Step<T> = { readonly ok: true; readonly value: T } | Answered;
type Answered = { readonly ok: false; readonly answer: FunctionUrlResult };

function answered(answer: FunctionUrlResult): Answered {
  return { ok: false, answer };
}

/**
 * The pipeline. The body is read once the caller is identified and before it is authenticated: a
 * stranger is refused before its body is looked at, and no AWS call is made for a bad body.
 */
async function serve(
  event: FunctionUrlEvent,
  deps: Deps,
  requestId: string,
): Promise<FunctionUrlResult> {
  const scope: RequestScope = {
    deps,
    requestId,
    sourceIp: event.requestContext.http.sourceIp,
    signal: AbortSignal.timeout(deps.config.admissionBudgetMs),
  };
  const health = healthCheck(event);
  if (health !== undefined) return health;
  const method = checkMethod(event, scope);
  if (!method.ok) return method.answer;
  const caller = identifyCaller(event, scope);
  if (!caller.ok) return caller.answer;
  const body = readRequestBody(event, scope);
  if (!body.ok) return body.answer;
  const record = await authenticate(caller.value, scope);
  if (!record.ok) return record.answer;
  const request = decode(body.value, scope);
  if (!request.ok) return request.answer;
  const decision = await decide(request.value, record.value, scope);
  return respond(request.value, record.value, decision, scope);
}

/**
 * `GET /v1/health`: static facts, before anything else, so it costs no lookup, no failure budget
 * and no log line, and cannot be told apart by any token.
 */
function healthCheck(event: FunctionUrlEvent): FunctionUrlResult | undefined {
  const answer = answerHealth(
    {
      method: event.requestContext.http.method,
      rawPath: event.rawPath,
      authorizationHeaderPresent: event.headers?.authorization !== undefined,
    },
    packageJson.version,
  );
  if (answer === undefined) return undefined;
  if (answer.kind === "method-not-allowed") return failure(405, "Method Not Allowed");
  return {
    ...json(200, answer.report),
    headers: { "content-type": "application/json", "cache-control": "no-store" },
  };
}

function checkMethod(event: FunctionUrlEvent, scope: RequestScope): Step<void> {
  const method = event.requestContext.http.method;
  if (method === "POST") return { ok: true, value: undefined };
  return rejectRequest(scope, failure(405, "Method Not Allowed"), method);
}

/** The body as text, within the size limit. */
function readRequestBody(event: FunctionUrlEvent, scope: RequestScope): Step<string> {
  const body = readBody(event, scope.deps.config.maxBodyBytes);
  if (body.ok) return { ok: true, value: body.text };
  return rejectRequest(scope, body.result, "body");
}

/** Who calls, from the path or header; a source past its failure budget is refused here. */
function identifyCaller(event: FunctionUrlEvent, scope: RequestScope): Step<WebhookCaller> {
  const { deps, sourceIp } = scope;
  const caller = parseWebhookCaller(event.rawPath, event.headers?.authorization);
  // A source past its budget is refused before any lookup, silently (logging would be the cost),
  // unless it names a cluster known to exist.
  if (deps.sources.exhausted(sourceIp) && !(caller && deps.records.isKnown(caller.clusterId))) {
    count(deps.telemetry.metrics, "AuthFailures");
    return answered(FORBIDDEN);
  }
  if (caller === undefined) return rejectCaller(scope, "malformed-path");
  return { ok: true, value: caller };
}

/** The caller's cluster record, once its token and source address match it. */
async function authenticate(
  caller: WebhookCaller,
  scope: RequestScope,
): Promise<Step<WebhookRecord>> {
  const { deps } = scope;
  let lookup: RecordLookup;
  try {
    lookup = (await deps.records.lookup(caller.clusterId, scope.signal)).value;
  } catch (error) {
    deps.telemetry.logger.error("cannot read the cluster record", {
      clusterId: caller.clusterId,
      error: errorSummary(error),
    });
    return answered(failure(503, "Service Unavailable"));
  }
  if (!lookup.found) {
    const reason = lookup.reason === "missing" ? "unknown-cluster" : "invalid-record";
    return rejectCaller(scope, reason, caller.clusterId, lookup.detail);
  }
  const record = lookup.record;
  if (!tokenMatches(caller.token, record.webhookTokenSha256))
    return rejectCaller(scope, "wrong-token", record.clusterId);
  if (!sourceAllowed(scope.sourceIp, record.allowedSourceCidrs))
    return rejectCaller(scope, "source-not-allowed", record.clusterId);
  return { ok: true, value: record };
}

function decode(body: string, scope: RequestScope): Step<AdmissionRequest> {
  const decoded = decodeAdmissionReview(body);
  if (decoded.ok) return decoded;
  const answer = failure(400, `Malformed AdmissionReview: ${decoded.error}`);
  return rejectRequest(scope, answer, decoded.error);
}

interface Decision {
  readonly response: AdmissionResponse;
  readonly tokenSources: TokenSources;
  readonly durationMs: number;
}

/** The admission's answer; a failure no step explains becomes a denial naming the request. */
async function decide(
  request: AdmissionRequest,
  record: WebhookRecord,
  scope: RequestScope,
): Promise<Decision> {
  const { deps, requestId } = scope;
  count(deps.telemetry.metrics, "Admissions");
  const startedAt = deps.now();
  const tokenSources: TokenSources = {};
  let response: AdmissionResponse;
  try {
    response = await admit(request, record, deps, scope.signal, tokenSources);
  } catch (error) {
    deps.telemetry.logger.error("admission failed unexpectedly", {
      clusterId: record.clusterId,
      error: errorSummary(error),
    });
    response = deny(request.uid, 500, internalErrorMessage(requestId));
  }
  return { response, tokenSources, durationMs: deps.now() - startedAt };
}

function respond(
  request: AdmissionRequest,
  record: WebhookRecord,
  { response, tokenSources, durationMs }: Decision,
  { deps }: RequestScope,
): FunctionUrlResult {
  const { logger, metrics } = deps.telemetry;
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
    durationMs,
  });
  return json(200, reviewResponse(response));
}

function rejectCaller(
  { deps, sourceIp }: RequestScope,
  reason: AuthFailure | "invalid-record",
  clusterId?: string,
  detail?: string,
): Answered {
  const { logger, metrics } = deps.telemetry;
  count(metrics, "AuthFailures");
  // Only strangers (ids no record has, paths no cluster uses) spend the source's budget: a
  // shared egress address must not let anyone lock a real cluster out by guessing its token.
  const usedUp =
    (reason === "unknown-cluster" || reason === "malformed-path") && deps.sources.failed(sourceIp);
  // An invalid record is the operator's mistake, not an attack: say so loudly.
  const log = reason === "invalid-record" ? logger.error.bind(logger) : logger.warn.bind(logger);
  log("webhook caller rejected", { reason, clusterId, detail, sourceIp });
  if (usedUp)
    logger.warn("source address refused for the rest of the minute: too many failed calls", {
      sourceIp,
      failures: SOURCE_FAILURES_PER_MINUTE,
    });
  return answered(FORBIDDEN);
}

function rejectRequest(
  { deps, sourceIp }: RequestScope,
  result: FunctionUrlResult,
  detail: string,
): Answered {
  deps.telemetry.logger.warn("malformed request", { status: result.statusCode, detail, sourceIp });
  return answered(result);
}

/** Where an admission's tokens came from, by source: logged with it, per cluster. */
type TokenSources = Partial<Record<TokenSource, number>>;

async function admit(
  request: AdmissionRequest,
  record: WebhookRecord,
  deps: WebhookDependencies,
  signal: AbortSignal,
  tokenSources: TokenSources,
): Promise<AdmissionResponse> {
  const { kinds } = deps.tokens;
  const decision = decideAdmission(request, record.registries, deps.config.names, kinds);
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
      const byEndpoint = new Map(tokens.map((token) => [endpointKey(token, kinds), token]));
      const credentials = decision.registries.flatMap((registry) => {
        const token = byEndpoint.get(endpointKey(endpointOf(registry, kinds), kinds));
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
  record: WebhookRecord,
  deps: WebhookDependencies,
  signal: AbortSignal,
  tokenSources: TokenSources,
): Promise<EcrToken[] | CredentialError> {
  const { metrics, logger } = deps.telemetry;
  const outcomes = await Promise.allSettled(
    tokenEndpointsOf(registries, deps.tokens.kinds).map((endpoint) =>
      deps.tokens.tokenFor(record, endpoint, signal),
    ),
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
