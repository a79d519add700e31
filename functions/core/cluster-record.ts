/** The cluster record kept in Secrets Manager (docs/contract.md), validated at the boundary. */
import { isIP } from "node:net";
import * as v from "valibot";
import { isEcrHost, type Partition, partitionProblem } from "./registries.ts";
import { type Parsed, parseJson, parseWith } from "./validation.ts";

export const CLUSTER_RECORD_VERSION = 1;

const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const ECR_REPOSITORY_ARN =
  /^arn:aws[a-z-]*:ecr:[a-z0-9-]+:\d{12}:repository\/[a-z0-9._/*-]{1,256}$/;

export function isDns1123Label(value: string): boolean {
  return DNS_1123_LABEL.test(value);
}

export function isRoleArn(value: string): boolean {
  return ROLE_ARN.test(value);
}

export function isEcrRepositoryArn(value: string): boolean {
  return ECR_REPOSITORY_ARN.test(value);
}

export function isCidr(value: string): boolean {
  const [address, prefix, ...rest] = value.split("/");
  if (address === undefined || prefix === undefined || rest.length > 0) return false;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  const family = isIP(address);
  const bits = Number(prefix);
  return (family === 4 && bits <= 32) || (family === 6 && bits <= 128);
}

const ClusterId = v.pipe(v.string(), v.check(isDns1123Label, "a DNS-1123 label"));

export const ClusterRecordV1Schema = v.strictObject({
  version: v.literal(CLUSTER_RECORD_VERSION),
  clusterId: ClusterId,
  kubeconfig: v.pipe(v.string(), v.nonEmpty()),
  webhookTokenSha256: v.pipe(
    v.array(v.pipe(v.string(), v.regex(/^[0-9a-fA-F]{64}$/, "64 hex digits"), v.toLowerCase())),
    v.minLength(1),
    v.maxLength(2, "at most two hashes (current and next, during rotation)"),
  ),
  registries: v.pipe(
    v.array(v.pipe(v.string(), v.check(isEcrHost, "an ECR registry host"))),
    v.minLength(1),
  ),
  roleArn: v.optional(v.pipe(v.string(), v.check(isRoleArn, "an IAM role ARN"))),
  repositories: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.check(isEcrRepositoryArn, "an ECR repository ARN"))),
      v.minLength(1),
    ),
  ),
  /** First pulls through a pull-through cache rule may import upstream images (session policy). */
  pullThroughCache: v.optional(v.boolean()),
  allowedSourceCidrs: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.check(isCidr, "a CIDR such as 203.0.113.0/24"))),
      v.minLength(1),
    ),
  ),
  ensure: v.optional(
    v.strictObject({
      secretName: v.pipe(
        v.string(),
        v.regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "a Secret name"),
      ),
      namespaces: v.pipe(v.array(ClusterId), v.minLength(1)),
      serviceAccounts: v.optional(v.array(v.pipe(v.string(), v.nonEmpty()))),
    }),
  ),
});

export type ClusterRecord = v.InferOutput<typeof ClusterRecordV1Schema>;

/**
 * Parses a record's JSON text. An unknown `version` is reported as such rather than as a pile of
 * field errors, so an operator running an older release knows to upgrade.
 */
export function parseClusterRecord(
  text: string,
  expectedClusterId?: string,
  /** The stack's partition: registries of another one are refused. */
  partition?: Partition,
): Parsed<ClusterRecord> {
  const json = parseJson(text);
  if (!json.ok) return json;
  const version = (json.value as { version?: unknown } | null)?.version;
  if (version !== CLUSTER_RECORD_VERSION) {
    return {
      ok: false,
      error: `unsupported cluster record version ${JSON.stringify(version ?? null)}; this release reads version ${CLUSTER_RECORD_VERSION}`,
    };
  }
  const parsed = parseWith(ClusterRecordV1Schema, json.value);
  if (
    parsed.ok &&
    expectedClusterId !== undefined &&
    parsed.value.clusterId !== expectedClusterId
  ) {
    return {
      ok: false,
      error: `record clusterId "${parsed.value.clusterId}" does not match its name (${expectedClusterId})`,
    };
  }
  // A session policy narrows an assumed role: without a role the webhook's own credentials would
  // mint the token, and the narrowing the record asks for would silently not happen.
  if (parsed.ok && parsed.value.roleArn === undefined) {
    if (parsed.value.repositories !== undefined)
      return {
        ok: false,
        error:
          "repositories needs roleArn: the session policy it becomes narrows an assumed role, and without one nothing would be narrowed",
      };
    if (parsed.value.pullThroughCache === true)
      return {
        ok: false,
        error:
          "pullThroughCache in a record needs roleArn and repositories (without them the stack's own pullThroughCache setting applies)",
      };
  }
  if (parsed.ok && partition !== undefined) {
    const problem = parsed.value.registries
      .map((host) => partitionProblem(host, partition))
      .find((found) => found !== undefined);
    if (problem) return { ok: false, error: problem };
  }
  return parsed;
}
