/**
 * Private Amazon ECR: `<account>.dkr.ecr.<region>.amazonaws.com` and its dual-stack and FIPS
 * variants, in every partition. Pure.
 *
 * FIPS is a variant of this kind (`fips` on the registry and endpoint), not a kind of its own: a
 * `dkr.ecr-fips` host has the same grammar, the same repositories, the same IAM actions and session
 * statements and the same service; only the API endpoint that mints its token differs (the SDK's
 * `useFipsEndpoint`). As a kind of its own it would repeat all of that, and split the webhook
 * role's one pull statement in two.
 */
import {
  type EcrRegistry,
  type Partition,
  type PolicyStatementJson,
  partitionOf,
  type RegistryKind,
  type TokenEndpoint,
} from "./registry-kind.ts";

// What kubelet needs to pull, and what GetAuthorizationToken needs to mint the token at all.
const PULL_ACTIONS = [
  "ecr:BatchGetImage",
  "ecr:GetDownloadUrlForLayer",
  "ecr:BatchCheckLayerAvailability",
];

// A pull-through cache repository's first pull imports the upstream image, creating the
// repository when it does not exist yet.
const PULL_THROUGH_CACHE_ACTIONS = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"];

// Regions with FIPS endpoints for ECR.
const FIPS_REGIONS = new Set([
  "us-east-1",
  "us-east-2",
  "us-west-1",
  "us-west-2",
  "us-gov-east-1",
  "us-gov-west-1",
]);

const REGION = "([a-z]{2}(?:-[a-z]+)+-\\d{1,2})";
// <account>.dkr.ecr[-fips].<region>.<domain>, where China's domain is amazonaws.com.cn.
const IPV4_HOST = new RegExp(
  `^(\\d{12})\\.dkr\\.ecr(-fips)?\\.${REGION}\\.(amazonaws\\.com(?:\\.cn)?)$`,
);
// <account>.dkr-ecr[-fips].<region>.<dual-stack domain>: on.aws, or China's on.amazonwebservices.com.cn.
const DUAL_STACK_HOST = new RegExp(
  `^(\\d{12})\\.dkr-ecr(-fips)?\\.${REGION}\\.(on\\.aws|on\\.amazonwebservices\\.com\\.cn)$`,
);
const DOMAINS: Readonly<Record<Partition, { readonly ipv4: string; readonly dualStack: string }>> =
  {
    aws: { ipv4: "amazonaws.com", dualStack: "on.aws" },
    "aws-us-gov": { ipv4: "amazonaws.com", dualStack: "on.aws" },
    "aws-cn": { ipv4: "amazonaws.com.cn", dualStack: "on.amazonwebservices.com.cn" },
  };

const ID = "ecr";

/** Any repository of the registry: tokens carry the minting principal's permissions. */
function repositoriesOf(registry: EcrRegistry): string {
  return `arn:${registry.partition}:ecr:${registry.region}:${registry.accountId}:repository/*`;
}

function pullStatements(
  repositories: readonly string[],
  pullThroughCache: boolean,
): PolicyStatementJson[] {
  if (repositories.length === 0) return [];
  return [
    {
      Sid: "PullFromAllowedRegistries",
      Effect: "Allow",
      // Tokens carry the minting principal's permissions: these are what kubelet can pull.
      Action: PULL_ACTIONS,
      Resource: repositories,
    },
    ...(pullThroughCache
      ? [
          {
            Sid: "ImportThroughPullThroughCache",
            Effect: "Allow" as const,
            // Only when opted in: a first pull imports the upstream image, creating the repository.
            Action: PULL_THROUGH_CACHE_ACTIONS,
            Resource: repositories,
          },
        ]
      : []),
  ];
}

export const ECR: RegistryKind = {
  id: ID,
  service: "ECR",
  tokenAction: "ecr:GetAuthorizationToken",
  tokenPermissions: "ecr:GetAuthorizationToken",
  hostPattern: "<account>.dkr.ecr.<region>.amazonaws.com",

  parseHost(host) {
    const ipv4 = IPV4_HOST.exec(host);
    const match = ipv4 ?? DUAL_STACK_HOST.exec(host);
    if (!match) return undefined;
    const [, accountId = "", fips, region = "", domain] = match;
    const partition = partitionOf(region);
    const expected = ipv4 ? DOMAINS[partition].ipv4 : DOMAINS[partition].dualStack;
    if (domain !== expected)
      return {
        ok: false,
        problem: `"${host}": registries in ${region} (partition ${partition}) are under ${expected}`,
      };
    if (fips && !FIPS_REGIONS.has(region))
      return {
        ok: false,
        problem: `"${host}": ECR has no FIPS endpoint in ${region} (FIPS regions: ${[...FIPS_REGIONS].join(", ")})`,
      };
    return {
      ok: true,
      registry: {
        host,
        kind: ID,
        accountId,
        region,
        partition,
        fips: fips !== undefined,
        dualStack: !ipv4,
      },
    };
  },

  // One token serves every registry of a region (dual-stack hosts included), but a FIPS host's
  // token must come from the FIPS endpoint.
  endpointOf: ({ region, fips }) => ({ kind: ID, region, fips }),
  endpointKey: ({ region, fips }: TokenEndpoint) => (fips ? `${region}|fips` : region),

  crossPartitionProblem: ({ host, partition }, stackPartition) =>
    `registry ${host} is in partition ${partition}, but this stack runs in ${stackPartition}: ECR tokens cannot cross partitions (deploy an ecr-anywhere stack in ${partition} for it)`,

  // The record's repositories when it narrows, else every repository of its registries (a
  // dual-stack or FIPS host names the same repositories as its ordinary host).
  sessionStatements: ({ registries, repositories, pullThroughCache }) => {
    const resources = repositories ?? [...new Set(registries.map(repositoriesOf))];
    if (resources.length === 0) return [];
    return [
      { Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
      {
        Effect: "Allow",
        Action: pullThroughCache ? [...PULL_ACTIONS, ...PULL_THROUGH_CACHE_ACTIONS] : PULL_ACTIONS,
        Resource: [...resources].sort(),
      },
    ];
  },

  roleStatements: (registries, { pullThroughCache }) => ({
    // Always, even when only other kinds are allowed: ECR is the stack's home kind (with no
    // allowed registries, the stack's own registry is the one).
    mint: [
      {
        Sid: "MintEcrTokens",
        Effect: "Allow",
        // GetAuthorizationToken has no resource-level permissions: AWS requires "*".
        Action: ["ecr:GetAuthorizationToken"],
        Resource: ["*"],
      },
    ],
    pull: pullStatements(registries.map(repositoriesOf), pullThroughCache),
  }),
};
