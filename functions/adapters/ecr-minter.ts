/** Private ECR's tokens: ECR's GetAuthorizationToken, at the region's FIPS endpoint for FIPS hosts. */
import { ECRClient, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";
import { ECR } from "../core/ecr-kind.ts";
import type { TokenEndpoint } from "../core/registry-kind.ts";
import type { AwsCredentials, MintedToken, TokenMinter } from "../core/tokens.ts";

/** An ECR client for a region; credentials are given when minting with an assumed role. */
export type EcrClientFactory = (
  region: string,
  credentials: AwsCredentials | undefined,
  fips: boolean,
) => ECRClient;

/** The SDK's own FIPS setting: a `dkr.ecr-fips` host's token comes from the region's FIPS API endpoint. */
export function ecrClientFor(
  region: string,
  credentials: AwsCredentials | undefined,
  fips: boolean,
): ECRClient {
  return new ECRClient({ region, credentials, useFipsEndpoint: fips });
}

export class EcrMinter implements TokenMinter {
  readonly kind = ECR;
  readonly #create: EcrClientFactory;
  /** Clients with the function's own credentials, one per endpoint, kept for reuse. */
  readonly #ownCredentialClients = new Map<string, ECRClient>();

  constructor(create: EcrClientFactory = ecrClientFor) {
    this.#create = create;
  }

  async mint(
    endpoint: TokenEndpoint,
    credentials: AwsCredentials | undefined,
    signal: AbortSignal,
  ): Promise<MintedToken | undefined> {
    const client = this.#clientFor(endpoint, credentials);
    try {
      const result = await client.send(new GetAuthorizationTokenCommand({}), {
        abortSignal: signal,
      });
      return result.authorizationData?.[0];
    } finally {
      if (credentials) client.destroy();
    }
  }

  #clientFor(endpoint: TokenEndpoint, credentials: AwsCredentials | undefined): ECRClient {
    if (credentials) return this.#create(endpoint.region, credentials, endpoint.fips);
    const key = ECR.endpointKey(endpoint);
    let client = this.#ownCredentialClients.get(key);
    if (client === undefined) {
      client = this.#create(endpoint.region, undefined, endpoint.fips);
      this.#ownCredentialClients.set(key, client);
    }
    return client;
  }
}
