/** ECR registry hosts: parsing, and choosing which ones a Secret gets. Pure. */

export type Partition = "aws" | "aws-cn" | "aws-us-gov";

export interface EcrRegistry {
  /** Host without scheme, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`. */
  readonly host: string;
  readonly accountId: string;
  /** The region the token is minted for (a dual-stack host takes the region's ordinary token). */
  readonly region: string;
  readonly partition: Partition;
  readonly fips: boolean;
  /** IPv6 and IPv4 (`dkr-ecr`), for IPv6 clusters. */
  readonly dualStack: boolean;
  /** ECR Public (`public.ecr.aws`): its token comes from ECR Public's API, in us-east-1 only. */
  readonly ecrPublic: boolean;
}

/** ECR Public's one registry host, as `docker login public.ecr.aws` names it. */
export const ECR_PUBLIC_HOST = "public.ecr.aws";
// ECR Public mints its tokens only in us-east-1, for the aws partition.
const ECR_PUBLIC_REGISTRY: EcrRegistry = {
  host: ECR_PUBLIC_HOST,
  accountId: "",
  region: "us-east-1",
  partition: "aws",
  fips: false,
  dualStack: false,
  ecrPublic: true,
};

export function partitionOf(region: string): Partition {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}

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

export type ParsedHost =
  | { readonly ok: true; readonly registry: EcrRegistry }
  | { readonly ok: false; readonly problem: string };

/** A registry host, exactly as ECR names them; otherwise what is wrong with it, in one line. */
export function parseRegistryHost(host: string): ParsedHost {
  if (host === ECR_PUBLIC_HOST) return { ok: true, registry: ECR_PUBLIC_REGISTRY };
  const ipv4 = IPV4_HOST.exec(host);
  const match = ipv4 ?? DUAL_STACK_HOST.exec(host);
  if (!match)
    return {
      ok: false,
      problem: `"${host}" is not an ECR registry host (expected <account>.dkr.ecr.<region>.amazonaws.com or public.ecr.aws, lower case, without scheme, port or path)`,
    };
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
      accountId,
      region,
      partition,
      fips: fips !== undefined,
      dualStack: !ipv4,
      ecrPublic: false,
    },
  };
}

/**
 * Why a host cannot be served by a stack in `partition`: ECR tokens (and the IAM behind them) never
 * cross partitions, so a China or GovCloud registry needs a stack deployed in that partition.
 */
export function partitionProblem(host: string, partition: Partition): string | undefined {
  const registry = parseEcrHost(host);
  if (!registry || registry.partition === partition) return undefined;
  if (registry.ecrPublic)
    return `registry ${host} (ECR Public) exists only in partition aws, but this stack runs in ${partition}: ECR Public tokens are minted in us-east-1 (deploy an ecr-anywhere stack in partition aws for it)`;
  return `registry ${host} is in partition ${registry.partition}, but this stack runs in ${partition}: ECR tokens cannot cross partitions (deploy an ecr-anywhere stack in ${registry.partition} for it)`;
}

export function parseEcrHost(host: string): EcrRegistry | undefined {
  const parsed = parseRegistryHost(host);
  return parsed.ok ? parsed.registry : undefined;
}

export function isEcrHost(host: string): boolean {
  return parseEcrHost(host) !== undefined;
}

/** True when any of `hosts` is ECR Public: its token needs its own permissions. */
export function includesEcrPublic(hosts: readonly string[] | undefined): boolean {
  return hosts?.includes(ECR_PUBLIC_HOST) === true;
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
    const problems = malformed.map((host) => {
      const result = parseRegistryHost(host);
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

/** Where a token is minted: a region's ordinary or FIPS ECR endpoint, or ECR Public. */
export interface TokenEndpoint {
  readonly region: string;
  readonly fips: boolean;
  readonly ecrPublic: boolean;
}

export function endpointKey(endpoint: TokenEndpoint): string {
  if (endpoint.ecrPublic) return `public|${endpoint.region}`;
  return endpoint.fips ? `${endpoint.region}|fips` : endpoint.region;
}

/**
 * One token serves every registry of a region (dual-stack hosts included), but a FIPS host's
 * token must come from the FIPS endpoint, and ECR Public's from its own API: tokens are fetched
 * per (region, FIPS, public).
 */
export function tokenEndpointsOf(registries: readonly EcrRegistry[]): TokenEndpoint[] {
  const endpoints = new Map<string, TokenEndpoint>();
  for (const { region, fips, ecrPublic } of registries)
    endpoints.set(endpointKey({ region, fips, ecrPublic }), { region, fips, ecrPublic });
  return [...endpoints.values()].sort((a, b) => endpointKey(a).localeCompare(endpointKey(b)));
}
