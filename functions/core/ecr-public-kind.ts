/**
 * ECR Public: one host, `public.ecr.aws`, whose token comes from ECR Public's own API, which
 * exists only in us-east-1 of partition aws. Public pulls need no per-repository permission. Pure.
 */
import type { EcrRegistry, PolicyStatementJson, RegistryKind } from "./registry-kind.ts";

/** ECR Public's one registry host, as `docker login public.ecr.aws` names it. */
export const ECR_PUBLIC_HOST = "public.ecr.aws";

const ID = "ecr-public";
// ECR Public mints its tokens only in us-east-1, for the aws partition.
const REGION = "us-east-1";

const REGISTRY: EcrRegistry = {
  host: ECR_PUBLIC_HOST,
  kind: ID,
  accountId: "",
  region: REGION,
  partition: "aws",
  fips: false,
  dualStack: false,
};

// ECR Public's token: its own GetAuthorizationToken, which asks STS for a service bearer token on
// the caller's behalf. AWS documents both as needed; the condition keeps the bearer token to ECR Public.
const MINT: PolicyStatementJson = {
  Effect: "Allow",
  Action: "ecr-public:GetAuthorizationToken",
  Resource: "*",
};
const BEARER_TOKEN: PolicyStatementJson = {
  Effect: "Allow",
  Action: "sts:GetServiceBearerToken",
  Resource: "*",
  Condition: { StringEquals: { "sts:AWSServiceName": "ecr-public.amazonaws.com" } },
};

export const ECR_PUBLIC: RegistryKind = {
  id: ID,
  service: "ECR Public",
  tokenAction: "ecr-public:GetAuthorizationToken",
  tokenPermissions: "ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken",
  hostPattern: ECR_PUBLIC_HOST,
  partitions: ["aws"],
  // Public repositories are public: its token only raises pull rate limits (docs/contract.md,
  // "Token scoping").
  publicOnly: true,

  parseHost: (host) => (host === ECR_PUBLIC_HOST ? { ok: true, registry: REGISTRY } : undefined),
  endpointOf: () => ({ kind: ID, region: REGION, fips: false }),
  endpointKey: ({ region }) => `public|${region}`,
  crossPartitionProblem: ({ host }, stackPartition) =>
    `registry ${host} (ECR Public) exists only in partition aws, but this stack runs in ${stackPartition}: ECR Public tokens are minted in us-east-1 (deploy an ecr-anywhere stack in partition aws for it)`,
  // Public pulls need nothing per repository: exactly what minting the token needs.
  sessionStatements: ({ registries }) => (registries.length === 0 ? [] : [MINT, BEARER_TOKEN]),
  // Only when a cluster may pull from ECR Public.
  roleStatements: (registries) => ({
    mint:
      registries.length === 0
        ? []
        : [
            { Sid: "MintEcrPublicTokens", ...MINT },
            { Sid: "EcrPublicBearerToken", ...BEARER_TOKEN },
          ],
    pull: [],
  }),
};
