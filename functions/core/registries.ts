/** ECR registry hosts: parsing, and choosing which ones a Secret gets. Pure. */

export interface EcrRegistry {
  /** Host without scheme, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`. */
  readonly host: string;
  readonly accountId: string;
  readonly region: string;
}

// Standard, FIPS and China partitions; the region is the part the token is minted for.
const ECR_HOST =
  /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d{1,2})\.amazonaws\.com(?:\.cn)?$/;

export function parseEcrHost(host: string): EcrRegistry | undefined {
  const match = ECR_HOST.exec(host);
  if (!match) return undefined;
  const [, accountId, region] = match;
  if (accountId === undefined || region === undefined) return undefined;
  return { host, accountId, region };
}

export function isEcrHost(host: string): boolean {
  return parseEcrHost(host) !== undefined;
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
  const parsed = [...new Set(requested)].map((host) => ({ host, registry: parseEcrHost(host) }));
  const malformed = parsed
    .filter((entry) => entry.registry === undefined)
    .map((entry) => entry.host);
  if (malformed.length > 0) {
    return {
      ok: false,
      message: `annotation ${annotationName} has hosts that are not ECR registries: ${malformed.join(", ")} (expected <account>.dkr.ecr.<region>.amazonaws.com)`,
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

/** One ECR token serves every registry of a region, so tokens are fetched per region. */
export function regionsOf(registries: readonly EcrRegistry[]): string[] {
  return [...new Set(registries.map((registry) => registry.region))].sort();
}
