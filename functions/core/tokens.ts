/**
 * Registry tokens, and the two ports the token provider (functions/adapters/ecr-tokens.ts) calls
 * out through: a kind's `TokenMinter`, and the `SharedTokenStore` its execution environments share.
 */
import type { RegistryKind, TokenEndpoint } from "./registry-kind.ts";

export interface EcrToken extends TokenEndpoint {
  readonly username: string;
  readonly password: string;
  /** The earliest of the registry's expiresAt and the expiry of the credentials that minted it. */
  readonly expiresAtMs: number;
}

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

/** What a token API answers: base64 of `user:password` (as both ECR APIs give it), and its expiry. */
export interface MintedToken {
  readonly authorizationToken?: string | undefined;
  readonly expiresAt?: Date | undefined;
}

/**
 * How one kind's tokens are minted: one API call, nothing more. The provider keeps the caches,
 * single flight, role credentials, shared store and error messages (in the kind's words).
 */
export interface TokenMinter {
  readonly kind: RegistryKind;
  /**
   * A token for `endpoint` (one of this kind's), with `credentials` (an assumed role's) or the
   * function's own when undefined; undefined when the API answered without one.
   */
  mint(
    endpoint: TokenEndpoint,
    credentials: AwsCredentials | undefined,
    signal: AbortSignal,
  ): Promise<MintedToken | undefined>;
}

export interface SharedToken {
  readonly token: EcrToken;
  /** Until when any environment may serve it (the cache reuse rule). */
  readonly reuseUntilMs: number;
}

export interface SharedTokenStore {
  /** The token stored for the key while it may still be served at `nowMs`. */
  read(key: string, nowMs: number, signal: AbortSignal): Promise<SharedToken | undefined>;
  /** Takes the right to mint for `leaseMs`; false when another environment holds it. */
  claim(key: string, nowMs: number, leaseMs: number, signal: AbortSignal): Promise<boolean>;
  write(key: string, shared: SharedToken, signal: AbortSignal): Promise<void>;
}
