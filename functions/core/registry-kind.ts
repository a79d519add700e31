/**
 * What a kind of registry is, as data and pure functions: the one place that knows a kind's host
 * grammar, where its tokens are minted, and what IAM minting and pulling need. Registries,
 * endpoints and tokens name their kind by `id`; code that needs more looks the descriptor up
 * (`kindOf` in registries.ts) instead of branching on the kind.
 *
 * Adding a kind takes a descriptor and a `TokenMinter` (tokens.ts) naming it. The token provider
 * is given the minters, and its `kinds` are what the webhook parses hosts against; the product's
 * kinds are listed in `REGISTRY_KINDS` (registries.ts: records, the stack's IAM) and their minters
 * in `defaultTokenMinters` (adapters/ecr-tokens.ts), which a test keeps in step. Pure.
 */

export type Partition = "aws" | "aws-cn" | "aws-us-gov";

export function partitionOf(region: string): Partition {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}

export interface EcrRegistry {
  /** Host without scheme, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`. */
  readonly host: string;
  /** The `RegistryKind` that parsed the host: its `id`. */
  readonly kind: string;
  /** The registry's account; empty when the kind has none (ECR Public's one host). */
  readonly accountId: string;
  /** The region the token is minted for (a dual-stack host takes the region's ordinary token). */
  readonly region: string;
  readonly partition: Partition;
  /** The host is the kind's FIPS variant: its token comes from the region's FIPS endpoint. */
  readonly fips: boolean;
  /** IPv6 and IPv4 (`dkr-ecr`), for IPv6 clusters. */
  readonly dualStack: boolean;
}

/** Where a token is minted: one per (kind, region, FIPS or not). */
export interface TokenEndpoint {
  readonly kind: string;
  readonly region: string;
  readonly fips: boolean;
}

export type ParsedHost =
  | { readonly ok: true; readonly registry: EcrRegistry }
  | { readonly ok: false; readonly problem: string };

/** One IAM policy statement in the policy language's own JSON, as STS and CloudFormation take it. */
export interface PolicyStatementJson {
  readonly Sid?: string;
  readonly Effect: "Allow";
  readonly Action: string | readonly string[];
  readonly Resource: string | readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/**
 * What a cluster's session is narrowed to (the session policy every cluster's tokens are minted
 * under, see session-policy.ts): its record's registries, or the repositories it lists.
 */
export interface SessionNarrowing {
  /** The record's registries of the kind being asked (maybe none). */
  readonly registries: readonly EcrRegistry[];
  /** ECR repository ARNs the record narrows to, when it does: they replace its ECR registries. */
  readonly repositories?: readonly string[] | undefined;
  /** First pulls may import through a pull-through cache rule. */
  readonly pullThroughCache: boolean;
}

/**
 * The webhook role's statements for one kind: `mint` (the token) and `pull` (what the token may
 * pull). The role's policy lists every kind's `mint` statements, then every kind's `pull` ones.
 */
export interface RoleStatements {
  readonly mint: readonly PolicyStatementJson[];
  readonly pull: readonly PolicyStatementJson[];
}

export interface RegistryKind {
  /** Names the kind on registries, endpoints and tokens, and in the shared token table's items. */
  readonly id: string;
  /** The service that mints its tokens, as messages name it: "ECR", "ECR Public". */
  readonly service: string;
  /** The IAM action that mints a token, and all that minting needs (for denial messages). */
  readonly tokenAction: string;
  readonly tokenPermissions: string;
  /** Its host's shape, for the message that names the hosts ecr-anywhere accepts. */
  readonly hostPattern: string;
  /** The partitions it exists in; every partition when omitted. */
  readonly partitions?: readonly Partition[];
  /**
   * Its tokens reach only what anyone may pull anyway (ECR Public): a cluster without a role of its
   * own gets them minted with the webhook's own credentials, outside any session policy, and the
   * webhook's role keeps this kind's statements. Every other kind is minted in a session scoped to
   * the cluster's record (docs/contract.md, "Token scoping").
   */
  readonly publicOnly?: boolean;

  /**
   * `host` read as a registry of this kind, or what is wrong with it in one line when it is of
   * this kind's shape; undefined when it is not this kind's host at all.
   */
  parseHost(host: string): ParsedHost | undefined;
  /** Where a registry's token is minted. */
  endpointOf(registry: EcrRegistry): TokenEndpoint;
  /**
   * The endpoint's part of every cache key. Keys of the shared token table are hashes of these
   * strings: changing one re-mints every token of the kind once.
   */
  endpointKey(endpoint: TokenEndpoint): string;
  /** Why a stack in `stackPartition` (not the registry's) cannot serve the registry, in one line. */
  crossPartitionProblem(registry: EcrRegistry, stackPartition: Partition): string;
  /**
   * What a session narrowed to `narrowing` needs to mint (and pull with) this kind's tokens; none
   * when the narrowing leaves nothing of this kind.
   */
  sessionStatements(narrowing: SessionNarrowing): readonly PolicyStatementJson[];
  /**
   * The statements of the principal that mints this kind's tokens for the stack's allowed
   * registries of this kind (maybe none): the webhook's role for a `publicOnly` kind, else the
   * token broker (or the stack's pull role).
   */
  roleStatements(
    registries: readonly EcrRegistry[],
    options: { readonly pullThroughCache: boolean },
  ): RoleStatements;
}
