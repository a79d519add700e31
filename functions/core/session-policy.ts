/**
 * The STS session policy every cluster's tokens are minted under: what its own record lists, and
 * nothing else the minting principal may reach. Pure.
 *
 * An ECR token carries every permission of the principal that minted it, for every registry that
 * principal can reach: without a session policy, a cluster allowed one registry could pull from
 * every registry the stack allows anyone. The policy intersects the principal's permissions with
 * the record's registries (or its `repositories`), so the token can do no more.
 */
import { ECR } from "./ecr-kind.ts";
import type { EcrRegistry, RegistryKind } from "./registry-kind.ts";

// STS rejects session policies above 2,048 characters (plaintext; the packed size has its own limit).
export const MAX_SESSION_POLICY_CHARS = 2048;

/** What a cluster's record says its tokens may reach. */
export interface SessionScope {
  /** The record's registries, parsed. */
  readonly registries: readonly EcrRegistry[];
  /** ECR repository ARNs the record narrows to, when it does. */
  readonly repositories?: readonly string[] | undefined;
  /** First pulls may import through pull-through cache rules. */
  readonly pullThroughCache: boolean;
}

/**
 * The policy JSON for a cluster's session over `kinds` (those whose tokens the session mints), or
 * undefined when none of them has anything to grant. Each kind grants what its own registries in
 * the record need; private ECR's statements are there whenever the record narrows to
 * `repositories`, since those are ECR repositories. Throws a RangeError past STS's size limit.
 */
export function sessionPolicyFor(
  scope: SessionScope,
  kinds: readonly RegistryKind[],
): string | undefined {
  const repositories =
    scope.repositories !== undefined && scope.repositories.length > 0
      ? scope.repositories
      : undefined;
  const ordered = [...kinds].sort((a, b) => Number(b.id === ECR.id) - Number(a.id === ECR.id));
  const statements = ordered.flatMap((kind) => {
    const registries = scope.registries.filter((registry) => registry.kind === kind.id);
    const narrowsThisKind = kind.id === ECR.id && repositories !== undefined;
    if (registries.length === 0 && !narrowsThisKind) return [];
    return kind.sessionStatements({
      registries,
      repositories,
      pullThroughCache: scope.pullThroughCache,
    });
  });
  if (statements.length === 0) return undefined;
  const policy = JSON.stringify({ Version: "2012-10-17", Statement: statements });
  if (policy.length > MAX_SESSION_POLICY_CHARS) {
    throw new RangeError(
      `the session policy for ${(repositories ?? scope.registries).length} repositories is ${policy.length} characters; STS allows ${MAX_SESSION_POLICY_CHARS}: use wildcards such as arn:aws:ecr:<region>:<account>:repository/team-a/*`,
    );
  }
  return policy;
}
