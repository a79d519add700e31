/** The STS session policy that narrows an assumed role to a cluster's repositories. Pure. */
import { ECR } from "./ecr-kind.ts";
import type { RegistryKind } from "./registry-kind.ts";

// STS rejects packed session policies above 2,048 characters.
export const MAX_SESSION_POLICY_CHARS = 2048;

/**
 * The policy JSON for `repositories`, or undefined when the cluster is not narrowed. The session
 * gets what each of `kinds` (those of the cluster's registries) needs to mint its tokens; private
 * ECR's statements are always there, since `repositories` are ECR repositories.
 */
export function sessionPolicyFor(
  repositories: readonly string[] | undefined,
  pullThroughCache = false,
  kinds: readonly RegistryKind[] = [],
): string | undefined {
  if (repositories === undefined || repositories.length === 0) return undefined;
  const narrowing = { repositories, pullThroughCache };
  const policy = JSON.stringify({
    Version: "2012-10-17",
    Statement: [ECR, ...kinds.filter((kind) => kind.id !== ECR.id)].flatMap((kind) =>
      kind.sessionStatements(narrowing),
    ),
  });
  if (policy.length > MAX_SESSION_POLICY_CHARS) {
    throw new RangeError(
      `the session policy for ${repositories.length} repositories is ${policy.length} characters; STS allows ${MAX_SESSION_POLICY_CHARS}: use wildcards such as arn:aws:ecr:<region>:<account>:repository/team-a/*`,
    );
  }
  return policy;
}
