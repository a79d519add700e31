/** ECR Public's tokens: its own GetAuthorizationToken, in us-east-1 whatever region the function runs in. */
import {
  ECRPUBLICClient,
  GetAuthorizationTokenCommand as GetPublicAuthorizationTokenCommand,
} from "@aws-sdk/client-ecr-public";
import { ECR_PUBLIC } from "../core/ecr-public-kind.ts";
import type { AwsCredentials, MintedToken, TokenMinter } from "../core/tokens.ts";

/** An ECR Public client; credentials are given when minting with an assumed role. */
export type EcrPublicClientFactory = (credentials: AwsCredentials | undefined) => ECRPUBLICClient;

/** ECR Public's API exists only in us-east-1, whatever region the function runs in. */
export function ecrPublicClientFor(credentials: AwsCredentials | undefined): ECRPUBLICClient {
  return new ECRPUBLICClient({ region: "us-east-1", credentials });
}

export class EcrPublicMinter implements TokenMinter {
  readonly kind = ECR_PUBLIC;
  readonly #create: EcrPublicClientFactory;
  #ownCredentialClient: ECRPUBLICClient | undefined;

  constructor(create: EcrPublicClientFactory = ecrPublicClientFor) {
    this.#create = create;
  }

  async mint(
    _endpoint: unknown,
    credentials: AwsCredentials | undefined,
    signal: AbortSignal,
  ): Promise<MintedToken | undefined> {
    const client = credentials ? this.#create(credentials) : this.#ownClient();
    try {
      const result = await client.send(new GetPublicAuthorizationTokenCommand({}), {
        abortSignal: signal,
      });
      return result.authorizationData;
    } finally {
      if (credentials) client.destroy();
    }
  }

  #ownClient(): ECRPUBLICClient {
    this.#ownCredentialClient ??= this.#create(undefined);
    return this.#ownCredentialClient;
  }
}
