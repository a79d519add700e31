/**
 * The refresher's kubeconfig, read from a cluster record: checked so it can only carry inline
 * credentials, and its ServiceAccount token inspected and replaced for self-renewal. Pure.
 */
import { BlockList, isIP } from "node:net";
import { parse, stringify } from "yaml";

interface NamedUser {
  name: string;
  user: Record<string, unknown>;
}

interface KubeconfigDocument {
  clusters?: { name: string; cluster: Record<string, unknown> }[];
  users?: NamedUser[];
  contexts?: { name: string; context: { cluster: string; user: string } }[];
  "current-context"?: string;
}

// Anything that reads a file or runs a program inside the refresher Lambda is refused: a record is
// data, never a way to execute code or read the function's files.
const FORBIDDEN_USER_FIELDS = [
  "exec",
  "auth-provider",
  "tokenFile",
  "client-certificate",
  "client-key",
  "username",
  "password",
];
const FORBIDDEN_CLUSTER_FIELDS = ["certificate-authority", "proxy-url"];

export type KubeconfigCheck = { ok: true } | { ok: false; error: string };

export interface KubeconfigPolicy {
  /** Accept loopback and link-local servers (local test beds only). */
  readonly allowLocalServers: boolean;
}

// From Lambda, these are the function itself (loopback carries the runtime API,
// AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001) or AWS's instance metadata service: never a cluster.
const LOCAL_ADDRESSES = new BlockList();
LOCAL_ADDRESSES.addSubnet("127.0.0.0", 8, "ipv4");
LOCAL_ADDRESSES.addSubnet("0.0.0.0", 8, "ipv4");
LOCAL_ADDRESSES.addSubnet("169.254.0.0", 16, "ipv4");
LOCAL_ADDRESSES.addAddress("::1", "ipv6");
LOCAL_ADDRESSES.addAddress("::", "ipv6");
LOCAL_ADDRESSES.addSubnet("fe80::", 10, "ipv6");
LOCAL_ADDRESSES.addAddress("fd00:ec2::254", "ipv6");
LOCAL_ADDRESSES.addSubnet("::ffff:127.0.0.0", 104, "ipv6");
LOCAL_ADDRESSES.addSubnet("::ffff:169.254.0.0", 112, "ipv6");

/** Why the refresher must not send its token to `server`, if it must not. */
function serverProblem(server: unknown, policy: KubeconfigPolicy): string | undefined {
  if (typeof server !== "string") return "has no server";
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return `server ${JSON.stringify(server)} is not a URL`;
  }
  if (url.protocol !== "https:")
    return `server ${url.origin} is not https: the refresher sends its token only over TLS`;
  if (policy.allowLocalServers) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const family = isIP(host);
  const local =
    host === "localhost" ||
    host.endsWith(".localhost") ||
    (family !== 0 && LOCAL_ADDRESSES.check(host, family === 6 ? "ipv6" : "ipv4"));
  return local
    ? `server ${url.host} is a loopback, link-local or metadata address, which from Lambda is the function itself or AWS's metadata service, not a cluster (local test beds set ECR_ANYWHERE_ALLOW_LOCAL_API_SERVERS=true)`
    : undefined;
}

export function checkKubeconfig(
  text: string,
  policy: KubeconfigPolicy = { allowLocalServers: false },
): KubeconfigCheck {
  let document: KubeconfigDocument;
  try {
    // Warnings (odd directives, …) change nothing here and would only reach the function's stderr.
    document = parse(text, { logLevel: "error" }) as KubeconfigDocument;
  } catch {
    return { ok: false, error: "kubeconfig is not valid YAML" };
  }
  const current = currentUser(document);
  if (!current)
    return { ok: false, error: "kubeconfig has no current-context with a user and cluster" };
  for (const { name, user } of document.users ?? []) {
    const forbidden = FORBIDDEN_USER_FIELDS.filter((field) => user?.[field] !== undefined);
    if (forbidden.length > 0)
      return {
        ok: false,
        error: `kubeconfig user "${name}" uses ${forbidden.join(", ")}: only token or client-certificate-data/client-key-data are allowed`,
      };
  }
  for (const { name, cluster } of document.clusters ?? []) {
    const forbidden = FORBIDDEN_CLUSTER_FIELDS.filter((field) => cluster?.[field] !== undefined);
    if (forbidden.length > 0)
      return {
        ok: false,
        error: `kubeconfig cluster "${name}" uses ${forbidden.join(", ")}: use certificate-authority-data`,
      };
    if (cluster?.["insecure-skip-tls-verify"] === true)
      return { ok: false, error: `kubeconfig cluster "${name}" disables TLS verification` };
    const problem = serverProblem(cluster?.server, policy);
    if (problem) return { ok: false, error: `kubeconfig cluster "${name}": ${problem}` };
  }
  return { ok: true };
}

export interface ServiceAccountToken {
  readonly namespace: string;
  readonly name: string;
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
}

/** The current user's bound ServiceAccount token, when it is one (a JWT with an expiry). */
export function serviceAccountToken(text: string): ServiceAccountToken | undefined {
  const user = currentUser(parse(text) as KubeconfigDocument);
  const token = user?.user.token;
  if (typeof token !== "string") return undefined;
  const [, payload] = token.split(".");
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as {
      exp?: number;
      iat?: number;
      "kubernetes.io"?: { namespace?: string; serviceaccount?: { name?: string } };
    };
    const namespace = claims["kubernetes.io"]?.namespace;
    const name = claims["kubernetes.io"]?.serviceaccount?.name;
    if (!namespace || !name || typeof claims.exp !== "number" || typeof claims.iat !== "number")
      return undefined;
    return { namespace, name, issuedAtMs: claims.iat * 1000, expiresAtMs: claims.exp * 1000 };
  } catch {
    return undefined;
  }
}

/** Renew once less than half the token's life remains: many scheduled runs fit in that half. */
export function needsRenewal(token: ServiceAccountToken, nowMs: number): boolean {
  return nowMs >= token.expiresAtMs - (token.expiresAtMs - token.issuedAtMs) / 2;
}

/** The current context's API server address and base64 CA, when it has them. */
export function kubeconfigTarget(text: string): { server: string; caData?: string } | undefined {
  let document: KubeconfigDocument;
  try {
    // Warnings (odd directives, …) change nothing here and would only reach the function's stderr.
    document = parse(text, { logLevel: "error" }) as KubeconfigDocument;
  } catch {
    return undefined;
  }
  const context = document?.contexts?.find((entry) => entry.name === document["current-context"]);
  const cluster = document?.clusters?.find((entry) => entry.name === context?.context?.cluster);
  const server = cluster?.cluster.server;
  if (typeof server !== "string") return undefined;
  const caData = cluster?.cluster["certificate-authority-data"];
  return typeof caData === "string" ? { server, caData } : { server };
}

/** The same kubeconfig pointed at another address of the same API server (same CA). */
export function withServer(text: string, server: string): string {
  const document = parse(text) as KubeconfigDocument;
  const context = document.contexts?.find((entry) => entry.name === document["current-context"]);
  const cluster = document.clusters?.find((entry) => entry.name === context?.context.cluster);
  if (!cluster) throw new Error("kubeconfig has no current cluster");
  cluster.cluster.server = server;
  return stringify(document);
}

/** The same kubeconfig with the current user's token replaced. */
export function withToken(text: string, token: string): string {
  const document = parse(text) as KubeconfigDocument;
  const user = currentUser(document);
  if (!user) throw new Error("kubeconfig has no current user");
  user.user.token = token;
  return stringify(document);
}

function currentUser(document: KubeconfigDocument | null | undefined): NamedUser | undefined {
  if (!document || typeof document !== "object") return undefined;
  const context = document.contexts?.find((entry) => entry.name === document["current-context"]);
  if (!context?.context?.user || !context.context.cluster) return undefined;
  return document.users?.find((entry) => entry.name === context.context.user);
}
