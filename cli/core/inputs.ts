/**
 * The CLI's flag values, parsed and checked with the same rules as the cluster record. Pure: each
 * error says what was expected, and names the offending value only when it is not secret.
 */
import {
  isDns1123Label,
  isEcrRepositoryArn,
  isRoleArn,
} from "../../functions/core/cluster-record.ts";
import { isDns1123Subdomain, isRecordsName } from "../../functions/core/contract.ts";
import {
  isRefresherNetworkMode,
  REFRESHER_NETWORK_MODES,
  type RefresherNetworkMode,
} from "../../functions/core/network.ts";
import { parseRegistryHost } from "../../functions/core/registries.ts";
import { absoluteHostPath } from "./admission-config.ts";
import { cidrProblem } from "./cidrs.ts";

/** Bad input: the command exits 2 and changes nothing. */
export class InputError extends Error {
  override readonly name = "InputError";
}

/** A comma-separated list: trimmed, empty items dropped, duplicates removed, order kept. */
export function csv(value: string): string[] {
  const items = [
    ...new Set(
      value
        .split(",")
        .map((item) => item.trim())
        .filter(Boolean),
    ),
  ];
  if (items.length === 0) throw new InputError("expected a comma-separated list, got nothing");
  return items;
}

function each(value: string, check: (item: string) => boolean, expected: string): string[] {
  const items = csv(value);
  const bad = items.filter((item) => !check(item));
  if (bad.length > 0)
    throw new InputError(
      `${bad.map((item) => JSON.stringify(item)).join(", ")}: expected ${expected}`,
    );
  return items;
}

export function parseClusterId(value: string): string {
  if (!isDns1123Label(value))
    throw new InputError(
      `cluster id ${JSON.stringify(value)}: expected a DNS-1123 label (lower-case letters, digits and '-', at most 63, e.g. gke-prod)`,
    );
  return value;
}

export function parseRegistries(value: string): string[] {
  const hosts = csv(value.toLowerCase());
  const problems = hosts.flatMap((host) => {
    const parsed = parseRegistryHost(host);
    return parsed.ok ? [] : [parsed.problem];
  });
  if (problems.length > 0) throw new InputError(problems.join("; "));
  return hosts;
}

export function parseNamespaces(value: string): string[] {
  return each(value, isDns1123Label, "namespace names (DNS-1123 labels)");
}

export function parseServiceAccounts(value: string): string[] {
  return each(value, isDns1123Subdomain, "ServiceAccount names");
}

/** The API server's egress addresses as exact CIDRs (which ranges a webhook can see: onboard's rules). */
export function parseCidrs(value: string): string[] {
  const items = csv(value);
  for (const item of items) {
    const problem = cidrProblem(item);
    if (problem) throw new InputError(problem);
  }
  return items;
}

export function parseRepositories(value: string): string[] {
  return each(
    value,
    isEcrRepositoryArn,
    "ECR repository ARNs such as arn:aws:ecr:us-east-1:123456789012:repository/team-a/*",
  );
}

/** A Lambda function's name, or its ARN (optionally with a version or alias), as Invoke takes it. */
export function parseFunctionName(value: string): string {
  if (
    !/^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]{1,128})?$/.test(
      value,
    )
  )
    throw new InputError(
      `${JSON.stringify(value)}: expected a Lambda function name or ARN, such as the stack's RefresherFunctionName output`,
    );
  return value;
}

export function parseRoleArn(value: string): string {
  if (!isRoleArn(value))
    throw new InputError(
      `${JSON.stringify(value)}: expected an IAM role ARN such as arn:aws:iam::123456789012:role/ecr-pull`,
    );
  return value;
}

export function parseSecretName(value: string): string {
  if (!isDns1123Subdomain(value))
    throw new InputError(`${JSON.stringify(value)}: expected a Secret name (DNS-1123 subdomain)`);
  return value;
}

/** An https:// URL without credentials, query or fragment (a webhook or API server address). */
export function parseHttpsUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InputError("expected an https:// URL");
  }
  if (url.protocol !== "https:") throw new InputError("expected an https:// URL");
  if (url.username || url.password || url.search || url.hash)
    throw new InputError("expected an https:// URL without credentials, query or fragment");
  return url.href.replace(/\/$/, "");
}

export function parseSeconds(value: string): number {
  if (!/^\d{1,7}$/.test(value)) throw new InputError("expected a whole number of seconds");
  return Number(value);
}

/** A parser of whole numbers from `min` to `max`, for a flag. */
export function wholeNumberFrom(min: number, max: number): (value: string) => number {
  return (value) => {
    const number = /^\d{1,7}$/.test(value) ? Number(value) : Number.NaN;
    if (!(number >= min && number <= max))
      throw new InputError(`expected a whole number from ${min} to ${max}`);
    return number;
  };
}

export function parseRecoveryDays(value: string): number {
  const days = /^\d{1,2}$/.test(value) ? Number(value) : Number.NaN;
  if (!(days >= 1 && days <= 30))
    throw new InputError("expected a whole number of days from 1 to 30");
  return days;
}

export function parseRecordsName(value: string): string {
  if (!isRecordsName(value))
    throw new InputError(
      `"${value}" is not a records name: 1 to 200 of A-Z, a-z, 0-9, "_", "." and "-" (the tables are <name>-webhook and <name>-refresher)`,
    );
  return value;
}

export function parseWebhookAuth(value: string): "url" | "header" {
  if (value !== "url" && value !== "header") throw new InputError('expected "url" or "header"');
  return value;
}

/** A file's path on the API server's host (`--admission-kubeconfig-path`): kube-apiserver needs it absolute. */
export function parseHostPath(value: string): string {
  const problem = absoluteHostPath(value);
  if (problem) throw new InputError(problem);
  return value;
}

export function parseRefresherNetwork(value: string): RefresherNetworkMode {
  if (!isRefresherNetworkMode(value))
    throw new InputError(`expected one of ${REFRESHER_NETWORK_MODES.join(", ")}`);
  return value;
}
