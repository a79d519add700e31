/**
 * Which credentials mint a cluster's token, under which session policy: the decision, as data.
 * The token provider (adapters/ecr-tokens.ts) carries it out. Pure.
 *
 * - A cluster with a `roleArn`: that role, assumed with the session policy of its whole record
 *   (role chaining from Lambda: 1 h sessions).
 * - A kind whose tokens reach only public content (ECR Public), for a cluster without a role: the
 *   webhook's own credentials, as before; nothing is scoped because nothing is private.
 * - Every other token of a cluster without a role: a session scoped to its record, from the token
 *   broker (`federation`: sts:GetFederationToken with the broker user's key, 36 h sessions) or
 *   from the stack's pull role (`role-session`: AssumeRole, 1 h sessions).
 *
 * The `identity` names what a token can do, and keys the token caches (in memory and the shared
 * table): two tokens share a key only when they were minted by the same principal under the same
 * session policy. Federated and pull-role tokens are therefore shared by clusters whose records
 * grant exactly the same (docs/contract.md, "Token scoping"); a cluster role's stay its own.
 */
import { sha256Hex } from "./auth.ts";
import { parseEcrHost, type RegistryKind } from "./registries.ts";
import { sessionPolicyFor } from "./session-policy.ts";

/** How the stack scopes clusters that have no role of their own. */
export const TOKEN_SCOPING_MODES = ["federation", "role-session"] as const;
export type TokenScopingMode = (typeof TOKEN_SCOPING_MODES)[number];

export type TokenScoping =
  | {
      readonly mode: "federation";
      /** Who federates, for the cache identity: the broker user's name (or "self" locally). */
      readonly broker: string;
    }
  | { readonly mode: "role-session"; readonly pullRoleArn: string };

/** sts:GetFederationToken's longest session (36 h): tokens minted from it get their full 12 h. */
export const FEDERATION_SESSION_SECONDS = 129_600;
/** Every federated user's name starts so: the broker may federate only these. */
export const FEDERATED_USER_PREFIX = "ecr-anywhere-";
const MAX_FEDERATED_NAME = 32;
const MAX_ROLE_SESSION_NAME = 64;

/** The parts of a cluster record that decide what its tokens may reach, and who mints them. */
export interface TokenRequester {
  readonly clusterId: string;
  readonly registries: readonly string[];
  readonly roleArn?: string | undefined;
  readonly repositories?: readonly string[] | undefined;
  readonly pullThroughCache?: boolean | undefined;
}

export type MintPlan =
  | { readonly via: "own"; readonly identity: string }
  | {
      readonly via: "assume-role";
      readonly roleArn: string;
      readonly sessionName: string;
      readonly policy: string | undefined;
      readonly identity: string;
      /** Sessions are per cluster: CloudTrail names the cluster each was made for. */
      readonly sessionKey: string;
    }
  | {
      readonly via: "federation";
      readonly name: string;
      readonly policy: string;
      readonly identity: string;
      readonly sessionKey: string;
    };

/** `ecr-anywhere-<cluster-id>`, cut to STS's 32 characters ([\w+=,.@-], which a DNS label fits). */
export function federatedUserName(clusterId: string): string {
  return `${FEDERATED_USER_PREFIX}${clusterId}`.slice(0, MAX_FEDERATED_NAME);
}

export function roleSessionName(clusterId: string): string {
  return `${FEDERATED_USER_PREFIX}${clusterId}`.slice(0, MAX_ROLE_SESSION_NAME);
}

/**
 * How `requester`'s token of `kind` is minted. `kinds` are the kinds the webhook serves;
 * `stackPullThroughCache` is the stack's setting, which a record that does not narrow inherits.
 * Throws a RangeError when the session policy is too large for STS.
 */
export function planMint(
  requester: TokenRequester,
  kind: RegistryKind,
  kinds: readonly RegistryKind[],
  scoping: TokenScoping,
  stackPullThroughCache: boolean,
): MintPlan {
  const { clusterId, roleArn } = requester;
  const narrowed = requester.repositories !== undefined && requester.repositories.length > 0;
  const scope = {
    registries: requester.registries.flatMap((host) => parseEcrHost(host, kinds) ?? []),
    repositories: narrowed ? requester.repositories : undefined,
    pullThroughCache: requester.pullThroughCache === true || (!narrowed && stackPullThroughCache),
  };
  if (roleArn !== undefined) {
    const policy = sessionPolicyFor(scope, kinds);
    const identity = `${clusterId}|${roleArn}|${sha256Hex(policy ?? "")}`;
    const sessionName = roleSessionName(clusterId);
    return { via: "assume-role", roleArn, sessionName, policy, identity, sessionKey: identity };
  }
  if (kind.publicOnly === true) return { via: "own", identity: "self" };
  const policy = sessionPolicyFor(
    scope,
    kinds.filter((candidate) => candidate.publicOnly !== true),
  );
  // The endpoint comes from the record's registries, so its kind has statements: never reached.
  if (policy === undefined) throw new RangeError(`no ${kind.service} registry in the record`);
  const hash = sha256Hex(policy);
  if (scoping.mode === "federation") {
    const identity = `federation|${scoping.broker}|${hash}`;
    const name = federatedUserName(clusterId);
    return { via: "federation", name, policy, identity, sessionKey: `${clusterId}|${identity}` };
  }
  const identity = `role-session|${scoping.pullRoleArn}|${hash}`;
  return {
    via: "assume-role",
    roleArn: scoping.pullRoleArn,
    sessionName: roleSessionName(clusterId),
    policy,
    identity,
    sessionKey: `${clusterId}|${identity}`,
  };
}
