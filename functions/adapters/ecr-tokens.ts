/**
 * Registry tokens, each minted under a session scoped to its cluster's record: with the cluster's
 * own role, the token broker's federated session or the stack's pull role (core/token-scoping.ts
 * decides, adapters/token-sessions.ts holds the sessions), or the function's own credentials for a
 * kind whose tokens reach only public content. Cached per (principal, session policy, endpoint);
 * concurrent misses share one call, and with a shared store so do other execution environments.
 *
 * One provider serves every registry kind: like Powertools' `BaseProvider`, which keeps caching and
 * leaves `_get` to each concrete provider, it keeps what is common (caches, single flight,
 * sessions, the shared store's lease, error messages) and hands the one API call to the kind's
 * `TokenMinter`. Composed rather than inherited: one admission asks for tokens of several kinds,
 * which share one cache, one set of sessions and one shared store.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { STSClient } from "@aws-sdk/client-sts";
import { endpointKey, kindOf, type RegistryKind, type TokenEndpoint } from "../core/registries.ts";
import { reuseUntil, tokenExpiry } from "../core/token-lifetime.ts";
import {
  type MintPlan,
  planMint,
  type TokenRequester,
  type TokenScoping,
} from "../core/token-scoping.ts";
import type {
  AwsCredentials,
  EcrToken,
  SharedToken,
  SharedTokenStore,
  TokenMinter,
} from "../core/tokens.ts";
import { type CacheSource, type Expiring, ExpiringCache } from "../lib/expiring-cache.ts";
import { CredentialError, explainAwsError } from "./aws-errors.ts";
import { EcrMinter } from "./ecr-minter.ts";
import { EcrPublicMinter } from "./ecr-public-minter.ts";
import { type BrokerSts, TokenSessions } from "./token-sessions.ts";

export type { TokenRequester } from "../core/token-scoping.ts";
export { CredentialError } from "./aws-errors.ts";

export interface EcrTokenProviderOptions {
  /** STS with the function's own credentials: AssumeRole (and GetFederationToken without `broker`). */
  readonly sts: STSClient;
  /**
   * One minter per registry kind the webhook serves, each naming its kind: registering a kind is
   * adding its minter here. Default: private ECR (FIPS included) and ECR Public.
   */
  readonly minters?: readonly TokenMinter[];
  readonly now: () => number;
  /** How clusters without a role are scoped. Default: federation with the function's own credentials. */
  readonly scoping?: TokenScoping;
  /** Where federated sessions come from. Default: the function's own credentials (`sts`). */
  readonly broker?: BrokerSts;
  /** The stack's pullThroughCache setting, which records that do not narrow inherit. */
  readonly pullThroughCache?: boolean;
  /** AssumeRole session length. Role chaining from Lambda caps it at one hour. */
  readonly assumeRoleDurationSeconds?: number;
  /** Never serve a cached token with less than this left. */
  readonly minimumRemainingMs?: number;
  /** Tokens shared with the function's other execution environments. */
  readonly shared?: SharedTokenStore;
  /** The shared store failed (the token was minted instead): for a metric and a log line. */
  readonly onSharedStoreError?: (error: unknown) => void;
}

/** Where a token came from: this environment's cache, the shared store, or a mint. */
export type TokenSource = CacheSource | "store";

interface PlannedToken {
  readonly plan: MintPlan;
  /** The cache key: (principal, session policy, endpoint). */
  readonly key: string;
}

interface LoadedToken {
  readonly token: EcrToken;
  readonly fromStore: boolean;
}

/** How long one environment may mint while the others wait for its token. */
const SHARED_LEASE_MS = 3000;
/** Two leases (6 s) at most, then mint: the admission's whole budget is 8 s. */
const SHARED_LEASES_AWAITED = 2;
const SHARED_POLL_MS = 100;
/** A slow store must not eat the admission's budget: past this, mint. */
const SHARED_STORE_TIMEOUT_MS = 1000;

function storeSignal(signal: AbortSignal): AbortSignal {
  return AbortSignal.any([signal, AbortSignal.timeout(SHARED_STORE_TIMEOUT_MS)]);
}

/** The kinds ecr-anywhere serves, each with its minter. */
export function defaultTokenMinters(): TokenMinter[] {
  return [new EcrMinter(), new EcrPublicMinter()];
}

export class EcrTokenProvider {
  readonly #options: EcrTokenProviderOptions;
  readonly #minters: ReadonlyMap<string, TokenMinter>;
  /** The registered kinds, in registration order: what hosts are parsed against. */
  readonly kinds: readonly RegistryKind[];
  readonly #tokens: ExpiringCache<string, LoadedToken>;
  readonly #sessions: TokenSessions;
  readonly #scoping: TokenScoping;
  /**
   * Per record object (records are cached objects), per endpoint: how its token is minted and its
   * cache key. No parsing or hashing per request, and one key string, whose hash V8 keeps.
   */
  readonly #plans = new WeakMap<TokenRequester, Map<string, PlannedToken>>();

  constructor(options: EcrTokenProviderOptions) {
    this.#options = options;
    const minters = options.minters ?? defaultTokenMinters();
    this.#minters = new Map(minters.map((minter) => [minter.kind.id, minter]));
    this.kinds = minters.map((minter) => minter.kind);
    this.#tokens = new ExpiringCache({ maxEntries: 2000, now: options.now });
    this.#scoping = options.scoping ?? { mode: "federation", broker: "self" };
    // The session options are a subset of these, under the same names.
    this.#sessions = new TokenSessions(options);
  }

  async tokenFor(
    requester: TokenRequester,
    endpoint: TokenEndpoint,
    signal: AbortSignal,
  ): Promise<{ token: EcrToken; source: TokenSource }> {
    const { plan, key } = this.#planFor(requester, endpoint);
    const { value, source } = await this.#tokens.getOrLoad(key, () =>
      this.#load(key, plan, endpoint, signal),
    );
    return {
      token: value.token,
      source: source === "loaded" && value.fromStore ? "store" : source,
    };
  }

  #planFor(requester: TokenRequester, endpoint: TokenEndpoint): PlannedToken {
    let plans = this.#plans.get(requester);
    if (plans === undefined) {
      plans = new Map();
      this.#plans.set(requester, plans);
    }
    const where = endpointKey(endpoint, this.kinds);
    const known = plans.get(`${endpoint.kind}|${where}`);
    if (known !== undefined) return known;
    try {
      const kind = kindOf(endpoint.kind, this.kinds);
      const pullThroughCache = this.#options.pullThroughCache === true;
      const plan = planMint(requester, kind, this.kinds, this.#scoping, pullThroughCache);
      const planned = { plan, key: `${plan.identity}|${where}` };
      plans.set(`${endpoint.kind}|${where}`, planned);
      return planned;
    } catch (error) {
      throw new CredentialError(400, `cluster record: ${(error as Error).message}`);
    }
  }

  /**
   * A token for this environment's cache: from the shared store when another environment minted
   * one, else minted here (under a lease, so environments that miss together mint once). The store
   * failing never fails an admission: it only costs a mint.
   */
  async #load(
    key: string,
    plan: MintPlan,
    endpoint: TokenEndpoint,
    signal: AbortSignal,
  ): Promise<Expiring<LoadedToken>> {
    const store = this.#options.shared;
    if (store) {
      const found =
        (await this.#fromStore(store, key, signal)) ??
        ((await this.#claim(store, key, signal))
          ? undefined
          : await this.#awaitStore(store, key, signal));
      if (found)
        return { value: { token: found.token, fromStore: true }, serveUntilMs: found.reuseUntilMs };
    }
    const fetchedAtMs = this.#options.now();
    const credentials = await this.#sessions.credentialsFor(plan, signal);
    const token = await this.#fetchToken(endpoint, credentials, signal);
    const reuseUntilMs = this.#reuseUntil(fetchedAtMs, token.expiresAtMs);
    if (store)
      await store
        .write(key, { token, reuseUntilMs }, storeSignal(signal))
        .catch((error: unknown) => this.#options.onSharedStoreError?.(error));
    return { value: { token, fromStore: false }, serveUntilMs: reuseUntilMs };
  }

  async #fromStore(
    store: SharedTokenStore,
    key: string,
    signal: AbortSignal,
  ): Promise<SharedToken | undefined> {
    try {
      return await store.read(key, this.#options.now(), storeSignal(signal));
    } catch (error) {
      this.#options.onSharedStoreError?.(error);
      return undefined;
    }
  }

  /** True when this environment should mint: it holds the lease, or the store cannot say. */
  async #claim(store: SharedTokenStore, key: string, signal: AbortSignal): Promise<boolean> {
    try {
      return await store.claim(key, this.#options.now(), SHARED_LEASE_MS, storeSignal(signal));
    } catch (error) {
      this.#options.onSharedStoreError?.(error);
      return true;
    }
  }

  /**
   * Another environment is minting: its token, if it lands. When a lease runs out first, one
   * waiter takes it over and mints while the others wait one lease more, so a slow mint (a
   * session, then the token) does not turn every waiter into a minter. Undefined: mint here.
   */
  async #awaitStore(
    store: SharedTokenStore,
    key: string,
    signal: AbortSignal,
  ): Promise<SharedToken | undefined> {
    for (let lease = 1; lease <= SHARED_LEASES_AWAITED; lease++) {
      const deadline = Date.now() + SHARED_LEASE_MS;
      while (Date.now() < deadline && !signal.aborted) {
        await sleep(SHARED_POLL_MS, undefined, { signal }).catch(() => undefined);
        const found = await this.#fromStore(store, key, signal);
        if (found) return found;
      }
      if (signal.aborted || (await this.#claim(store, key, signal))) return undefined;
    }
    return undefined;
  }

  #reuseUntil(fetchedAtMs: number, expiresAtMs: number): number {
    return reuseUntil(fetchedAtMs, expiresAtMs, this.#options.minimumRemainingMs);
  }

  async #fetchToken(
    endpoint: TokenEndpoint,
    credentials: AwsCredentials | undefined,
    signal: AbortSignal,
  ): Promise<EcrToken> {
    const minter = this.#minterOf(endpoint);
    const { region } = endpoint;
    const { service } = minter.kind;
    try {
      const data = await minter.mint(endpoint, credentials, signal);
      if (!data?.authorizationToken || !data.expiresAt) {
        throw new CredentialError(
          502,
          `${service} GetAuthorizationToken in ${region} returned no token`,
        );
      }
      const decoded = Buffer.from(data.authorizationToken, "base64").toString("utf8");
      const separator = decoded.indexOf(":");
      if (separator <= 0)
        throw new CredentialError(
          502,
          `${service} in ${region} returned a token in an unknown format`,
        );
      return {
        kind: endpoint.kind,
        region,
        fips: endpoint.fips,
        username: decoded.slice(0, separator),
        password: decoded.slice(separator + 1),
        expiresAtMs: tokenExpiry(data.expiresAt.getTime(), credentials?.expiration.getTime()),
      };
    } catch (error) {
      throw explainEcrError(error, region, minter.kind);
    }
  }

  #minterOf(endpoint: TokenEndpoint): TokenMinter {
    const minter = this.#minters.get(endpoint.kind);
    if (minter === undefined) throw new Error(`no minter for registry kind "${endpoint.kind}"`);
    return minter;
  }
}

function explainEcrError(error: unknown, region: string, kind: RegistryKind): Error {
  const { service } = kind;
  return explainAwsError(error, {
    service,
    operation: `GetAuthorizationToken in ${region}`,
    throttled: ` (if it persists, raise the ${service} quota or reduce how often Secrets are written)`,
    denied: `AWS denied ${kind.tokenAction} in ${region}`,
    check: `Check that the IAM policy of the role that mints tokens for this cluster allows ${kind.tokenPermissions}.`,
  });
}
