/**
 * ECR registry hosts: parsing, and choosing which ones a Secret gets, over the registry kinds
 * ecr-anywhere serves (registry-kind.ts). Every function takes the kinds, defaulting to the
 * built-in ones. Pure.
 */
import { ECR } from "./ecr-kind.ts";
import { ECR_PUBLIC } from "./ecr-public-kind.ts";
import type {
  EcrRegistry,
  ParsedHost,
  Partition,
  RegistryKind,
  TokenEndpoint,
} from "./registry-kind.ts";

export {
  type EcrRegistry,
  type ParsedHost,
  type Partition,
  partitionOf,
  type RegistryKind,
  type TokenEndpoint,
} from "./registry-kind.ts";

/** The kinds ecr-anywhere serves: private ECR (FIPS included) and ECR Public. */
export const REGISTRY_KINDS: readonly RegistryKind[] = [ECR, ECR_PUBLIC];

/** The descriptor of a registry, endpoint or token's kind. */
export function kindOf(id: string, kinds: readonly RegistryKind[] = REGISTRY_KINDS): RegistryKind {
  const kind = kinds.find((candidate) => candidate.id === id);
  if (kind === undefined) throw new Error(`no registry kind "${id}" is registered`);
  return kind;
}

/** A registry host, exactly as its registry names it; otherwise what is wrong with it, in one line. */
export function parseRegistryHost(
  host: string,
  kinds: readonly RegistryKind[] = REGISTRY_KINDS,
): ParsedHost {
  for (const kind of kinds) {
    const parsed = kind.parseHost(host);
    if (parsed !== undefined) return parsed;
  }
  return {
    ok: false,
    problem: `"${host}" is not an ECR registry host (expected ${kinds.map((kind) => kind.hostPattern).join(" or ")}, lower case, without scheme, port or path)`,
  };
}

/**
 * Why a host cannot be served by a stack in `partition`: ECR tokens (and the IAM behind them) never
 * cross partitions, so a China or GovCloud registry needs a stack deployed in that partition.
 */
export function partitionProblem(
  host: string,
  partition: Partition,
  kinds: readonly RegistryKind[] = REGISTRY_KINDS,
): string | undefined {
  const registry = parseEcrHost(host, kinds);
  if (!registry || registry.partition === partition) return undefined;
  return kindOf(registry.kind, kinds).crossPartitionProblem(registry, partition);
}

export function parseEcrHost(
  host: string,
  kinds: readonly RegistryKind[] = REGISTRY_KINDS,
): EcrRegistry | undefined {
  const parsed = parseRegistryHost(host, kinds);
  return parsed.ok ? parsed.registry : undefined;
}

export function isEcrHost(host: string, kinds: readonly RegistryKind[] = REGISTRY_KINDS): boolean {
  return parseEcrHost(host, kinds) !== undefined;
}

/** The kinds of `hosts` (in the order of `kinds`): what a session minting their tokens needs. */
export function kindsOf(
  hosts: readonly string[] | undefined,
  kinds: readonly RegistryKind[] = REGISTRY_KINDS,
): RegistryKind[] {
  const used = new Set((hosts ?? []).map((host) => parseEcrHost(host, kinds)?.kind));
  return kinds.filter((kind) => used.has(kind.id));
}

export type RegistrySelection =
  | { readonly ok: true; readonly registries: readonly EcrRegistry[] }
  | { readonly ok: false; readonly message: string };

/**
 * The registries a Secret gets: the cluster record's list, or the Secret's own annotation
 * narrowed to hosts the record allows. A host outside the record is refused by name, never dropped
 * silently, so a user learns why a pull would fail.
 */
export function selectRegistries(
  annotation: string | undefined,
  allowedHosts: readonly string[],
  annotationName: string,
  kinds: readonly RegistryKind[] = REGISTRY_KINDS,
): RegistrySelection {
  const requested =
    annotation === undefined
      ? allowedHosts
      : annotation
          .split(",")
          .map((host) => host.trim().toLowerCase())
          .filter((host) => host.length > 0);
  if (requested.length === 0) {
    return { ok: false, message: `annotation ${annotationName} lists no registry hosts` };
  }
  const parsed = [...new Set(requested)].map((host) => ({
    host,
    registry: parseEcrHost(host, kinds),
  }));
  const malformed = parsed
    .filter((entry) => entry.registry === undefined)
    .map((entry) => entry.host);
  if (malformed.length > 0) {
    const problems = malformed.map((host) => {
      const result = parseRegistryHost(host, kinds);
      return result.ok ? host : result.problem;
    });
    return {
      ok: false,
      message: `annotation ${annotationName} has hosts that are not ECR registries: ${problems.join("; ")}`,
    };
  }
  const allowed = new Set(allowedHosts);
  const refused = parsed.filter((entry) => !allowed.has(entry.host)).map((entry) => entry.host);
  if (refused.length > 0) {
    return {
      ok: false,
      message: `this cluster may not use registry ${refused.join(", ")}; allowed: ${allowedHosts.join(", ")}`,
    };
  }
  return {
    ok: true,
    registries: parsed.flatMap((entry) => (entry.registry ? [entry.registry] : [])),
  };
}

/** Where a registry's token is minted. */
export function endpointOf(
  registry: EcrRegistry,
  kinds: readonly RegistryKind[] = REGISTRY_KINDS,
): TokenEndpoint {
  return kindOf(registry.kind, kinds).endpointOf(registry);
}

export function endpointKey(
  endpoint: TokenEndpoint,
  kinds: readonly RegistryKind[] = REGISTRY_KINDS,
): string {
  return kindOf(endpoint.kind, kinds).endpointKey(endpoint);
}

/**
 * The endpoints that mint the registries' tokens, each once: a kind decides which of its
 * registries share one (ECR: one per region, a FIPS host's from the FIPS endpoint; ECR Public: one).
 */
export function tokenEndpointsOf(
  registries: readonly EcrRegistry[],
  kinds: readonly RegistryKind[] = REGISTRY_KINDS,
): TokenEndpoint[] {
  const endpoints = new Map<string, TokenEndpoint>();
  for (const registry of registries) {
    const endpoint = endpointOf(registry, kinds);
    endpoints.set(endpointKey(endpoint, kinds), endpoint);
  }
  return [...endpoints.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, endpoint]) => endpoint);
}
