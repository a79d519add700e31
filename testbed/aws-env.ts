/** Points the AWS SDK at local stand-ins through its standard endpoint variables. */

import { Agent } from "node:https";
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { ClusterRecord } from "../functions/core/cluster-record.ts";

export interface LocalEndpoints {
  readonly secretsManager: string;
  readonly sts: string;
  readonly ecr: string;
  /** moto, for the CLI's key check and stack outputs. */
  readonly kms?: string;
  readonly cloudFormation?: string;
}

export function localAwsEnv(endpoints: LocalEndpoints): Record<string, string> {
  return {
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "AKIAWEBHOOKTESTKEY01",
    AWS_SECRET_ACCESS_KEY: "webhook-test-secret-access-key",
    AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.secretsManager,
    AWS_ENDPOINT_URL_STS: endpoints.sts,
    AWS_ENDPOINT_URL_ECR: endpoints.ecr,
    AWS_ENDPOINT_URL_ECR_PUBLIC: endpoints.ecr,
    // The test bed's API servers listen on 127.0.0.1, which a real refresher refuses.
    ECR_ANYWHERE_ALLOW_LOCAL_API_SERVERS: "true",
    ...(endpoints.kms ? { AWS_ENDPOINT_URL_KMS: endpoints.kms } : {}),
    ...(endpoints.cloudFormation
      ? { AWS_ENDPOINT_URL_CLOUDFORMATION: endpoints.cloudFormation }
      : {}),
    AWS_MAX_ATTEMPTS: "3",
    POWERTOOLS_METRICS_DISABLED: "false",
  };
}

/** Writes (creates or replaces) a cluster record in Secrets Manager. */
export async function putClusterRecord(
  endpoint: string,
  record: ClusterRecord | Record<string, unknown>,
  options: { readonly name?: string; readonly caPem?: string; readonly region?: string } = {},
) {
  const client = new SecretsManagerClient({
    endpoint,
    region: options.region ?? "us-east-1",
    credentials: { accessKeyId: "AKIAWEBHOOKTESTKEY01", secretAccessKey: "x" },
    ...(options.caPem
      ? { requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: options.caPem }) }) }
      : {}),
  });
  const secretId = options.name ?? `ecr-anywhere/clusters/${String(record.clusterId)}`;
  const secretString = JSON.stringify(record);
  try {
    await client.send(new CreateSecretCommand({ Name: secretId, SecretString: secretString }));
  } catch (error) {
    if ((error as Error).name !== "ResourceExistsException") throw error;
    await client.send(
      new PutSecretValueCommand({ SecretId: secretId, SecretString: secretString }),
    );
  }
  client.destroy();
}
