/** The STS session policy that narrows an assumed role to a cluster's repositories. Pure. */

// What kubelet needs to pull, and what GetAuthorizationToken needs to mint the token at all.
const PULL_ACTIONS = [
  "ecr:BatchGetImage",
  "ecr:GetDownloadUrlForLayer",
  "ecr:BatchCheckLayerAvailability",
];

// A pull-through cache repository's first pull imports the upstream image, creating the
// repository when it does not exist yet.
export const PULL_THROUGH_CACHE_ACTIONS = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"];

// ECR Public's token: its own GetAuthorizationToken, which asks STS for a service bearer token on
// the caller's behalf. AWS documents both as needed; the condition keeps the bearer token to ECR Public.
export const ECR_PUBLIC_TOKEN_STATEMENTS = [
  { Effect: "Allow", Action: "ecr-public:GetAuthorizationToken", Resource: "*" },
  {
    Effect: "Allow",
    Action: "sts:GetServiceBearerToken",
    Resource: "*",
    Condition: { StringEquals: { "sts:AWSServiceName": "ecr-public.amazonaws.com" } },
  },
] as const;

// STS rejects packed session policies above 2,048 characters.
export const MAX_SESSION_POLICY_CHARS = 2048;

/**
 * The policy JSON for `repositories`, or undefined when the cluster is not narrowed. A cluster that
 * pulls from ECR Public also gets exactly what minting that token needs (public pulls need nothing
 * per repository).
 */
export function sessionPolicyFor(
  repositories: readonly string[] | undefined,
  pullThroughCache = false,
  ecrPublic = false,
): string | undefined {
  if (repositories === undefined || repositories.length === 0) return undefined;
  const policy = JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
      {
        Effect: "Allow",
        Action: pullThroughCache ? [...PULL_ACTIONS, ...PULL_THROUGH_CACHE_ACTIONS] : PULL_ACTIONS,
        Resource: [...repositories].sort(),
      },
      ...(ecrPublic ? ECR_PUBLIC_TOKEN_STATEMENTS : []),
    ],
  });
  if (policy.length > MAX_SESSION_POLICY_CHARS) {
    throw new RangeError(
      `the session policy for ${repositories.length} repositories is ${policy.length} characters; STS allows ${MAX_SESSION_POLICY_CHARS}: use wildcards such as arn:aws:ecr:<region>:<account>:repository/team-a/*`,
    );
  }
  return policy;
}
