/**
 * What the stack's principals may do with registries, as plain IAM JSON (the CDK construct turns
 * it into policy statements): each registry kind's statements for the allowed registries of that
 * kind, on the principal that mints its tokens. Pure.
 */

import {
  type EcrRegistry,
  parseRegistryHost,
  REGISTRY_KINDS,
  type RegistryKind,
} from "./registries.ts";
import { type Partition, type PolicyStatementJson, partitionOf } from "./registry-kind.ts";

/**
 * The stack's `allowedRegistries`, parsed; throws on a host that is not a registry, or of a kind
 * that does not exist in the stack's partition (when the stack's region is known at synthesis).
 */
export function parseAllowedRegistries(
  hosts: readonly string[],
  stackRegion: string | undefined,
  kinds: readonly RegistryKind[] = REGISTRY_KINDS,
): EcrRegistry[] {
  const registries = hosts.map((host) => {
    const parsed = parseRegistryHost(host, kinds);
    if (!parsed.ok) throw new Error(`allowedRegistries: ${parsed.problem}`);
    return parsed.registry;
  });
  if (stackRegion === undefined) return registries;
  for (const kind of kinds) {
    const partitions: readonly Partition[] | undefined = kind.partitions;
    const own = registries.filter((registry) => registry.kind === kind.id);
    if (own.length > 0 && partitions && !partitions.includes(partitionOf(stackRegion)))
      throw new Error(
        `allowedRegistries: ${[...new Set(own.map((registry) => registry.host))].join(", ")} exists only in partition ${partitions.join(" or ")}; this stack is in ${stackRegion}`,
      );
  }
  return registries;
}

/**
 * The webhook role's registry statements: every kind's `mint` statements, then every kind's
 * `pull` statements, each kind given its own registries among `registries` (maybe none).
 */
export function registryRoleStatements(
  registries: readonly EcrRegistry[],
  options: { readonly pullThroughCache: boolean },
  kinds: readonly RegistryKind[] = REGISTRY_KINDS,
): PolicyStatementJson[] {
  const perKind = kinds.map((kind) =>
    kind.roleStatements(
      registries.filter((registry) => registry.kind === kind.id),
      options,
    ),
  );
  return [...perKind.flatMap((statements) => statements.mint), ...perKind.flatMap((s) => s.pull)];
}

/**
 * Each principal's registry statements: the webhook's role mints only the kinds whose tokens reach
 * only public content (ECR Public); the scoped principal (the token broker user, or the stack's
 * pull role) mints every other kind, always under a cluster's session policy. The webhook's role
 * can therefore not mint a private token at all.
 */
export function mintingStatements(
  registries: readonly EcrRegistry[],
  options: { readonly pullThroughCache: boolean },
  kinds: readonly RegistryKind[] = REGISTRY_KINDS,
): { readonly webhook: PolicyStatementJson[]; readonly scoped: PolicyStatementJson[] } {
  return {
    webhook: registryRoleStatements(
      registries,
      options,
      kinds.filter((kind) => kind.publicOnly === true),
    ),
    scoped: registryRoleStatements(
      registries,
      options,
      kinds.filter((kind) => kind.publicOnly !== true),
    ),
  };
}
