/**
 * The refresher's kubeconfig, read from a cluster record: checked so it can only carry inline
 * credentials, and its ServiceAccount token inspected and replaced for self-renewal. Pure.
 */
import { parse, stringify } from "yaml";
import { classifyHost } from "./network.ts";

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

/**
 * What a record's kubeconfig may hold: an allow-list, not a deny-list. `@kubernetes/client-node`
 * acts on keys the moment it loads a kubeconfig (kebab-case `token-file`, `exec`, file paths, a
 * proxy), so a record is data that can name only a server, its CA and inline credentials; every
 * other key is refused by name, and clients are built from the validated object, never the text.
 */
const ALLOWED = {
  document: [
    "apiVersion",
    "kind",
    "clusters",
    "users",
    "contexts",
    "current-context",
    "preferences",
  ],
  namedCluster: ["name", "cluster"],
  cluster: ["server", "certificate-authority-data", "tls-server-name"],
  namedUser: ["name", "user"],
  user: ["token", "client-certificate-data", "client-key-data"],
  namedContext: ["name", "context"],
  context: ["cluster", "user", "namespace"],
} as const;

/** A kubeconfig that passed the allow-list, in `KubeConfig.loadFromOptions`'s own shape. */
export interface ValidatedKubeconfig {
  readonly clusters: readonly {
    readonly name: string;
    readonly server: string;
    readonly caData?: string;
    readonly tlsServerName?: string;
    readonly skipTLSVerify: false;
  }[];
  readonly users: readonly {
    readonly name: string;
    readonly token?: string;
    readonly certData?: string;
    readonly keyData?: string;
  }[];
  readonly contexts: readonly {
    readonly name: string;
    readonly cluster: string;
    readonly user: string;
    readonly namespace?: string;
  }[];
  readonly currentContext: string;
}

export type ParsedKubeconfig =
  | { readonly ok: true; readonly value: ValidatedKubeconfig }
  | { readonly ok: false; readonly error: string };

export type KubeconfigCheck = { ok: true } | { ok: false; error: string };

export interface KubeconfigPolicy {
  /** Accept loopback and link-local servers (local test beds only). */
  readonly allowLocalServers: boolean;
}

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
  return classifyHost(url.hostname) === "local"
    ? `server ${url.host} is a loopback, link-local or metadata address, which from Lambda is the function itself or AWS's metadata service, not a cluster (local test beds set ECR_ANYWHERE_ALLOW_LOCAL_API_SERVERS=true)`
    : undefined;
}

/**
 * The allow-list and the server rule together: what the refresher (and the CLI, for a record's
 * kubeconfig) checks before it sends the record's credentials anywhere.
 */
export function checkKubeconfig(
  text: string,
  policy: KubeconfigPolicy = { allowLocalServers: false },
): KubeconfigCheck {
  const parsed = parseKubeconfig(text);
  if (!parsed.ok) return parsed;
  for (const cluster of parsed.value.clusters) {
    const problem = serverProblem(cluster.server, policy);
    if (problem) return { ok: false, error: `kubeconfig cluster "${cluster.name}": ${problem}` };
  }
  return { ok: true };
}

/**
 * A record's kubeconfig through the allow-list: https servers with inline CA data, users with an
 * inline token or client certificate, and a current context that names both. Server addresses
 * are checked by `checkKubeconfig`, which knows where the request would come from.
 */
export function parseKubeconfig(text: string): ParsedKubeconfig {
  let document: unknown;
  try {
    // Warnings (odd directives, …) change nothing here and would only reach the function's stderr.
    document = parse(text, { logLevel: "error" });
  } catch {
    return { ok: false, error: "kubeconfig is not valid YAML" };
  }
  try {
    return { ok: true, value: validated(document) };
  } catch (error) {
    if (error instanceof KubeconfigRefused) return { ok: false, error: error.message };
    throw error;
  }
}

class KubeconfigRefused extends Error {}

function validated(document: unknown): ValidatedKubeconfig {
  const root = objectOf(document, "kubeconfig", ALLOWED.document);
  const preferences = root.preferences;
  if (
    preferences !== undefined &&
    preferences !== null &&
    Object.keys(objectOf(preferences, "kubeconfig preferences", [])).length > 0
  )
    throw new KubeconfigRefused("kubeconfig preferences must be empty");
  const clusters = listOf(root.clusters, "clusters").map((entry) => validCluster(entry));
  const users = listOf(root.users, "users").map((entry) => validUser(entry));
  const contexts = listOf(root.contexts, "contexts").map((entry) => validContext(entry));
  const currentContext = root["current-context"];
  const context = contexts.find((item) => item.name === currentContext);
  if (
    typeof currentContext !== "string" ||
    !context ||
    !clusters.some((item) => item.name === context.cluster) ||
    !users.some((item) => item.name === context.user)
  )
    throw new KubeconfigRefused("kubeconfig has no current-context with a user and cluster");
  return { clusters, users, contexts, currentContext };
}

function validCluster(entry: unknown): ValidatedKubeconfig["clusters"][number] {
  const named = objectOf(entry, "kubeconfig cluster entry", ALLOWED.namedCluster);
  const name = stringOf(named.name, "kubeconfig cluster name");
  const cluster = objectOf(named.cluster, `kubeconfig cluster "${name}"`, ALLOWED.cluster);
  const server = stringOf(cluster.server, `kubeconfig cluster "${name}" server`);
  const caData = optionalString(
    cluster["certificate-authority-data"],
    `kubeconfig cluster "${name}" certificate-authority-data`,
  );
  const tlsServerName = optionalString(
    cluster["tls-server-name"],
    `kubeconfig cluster "${name}" tls-server-name`,
  );
  return {
    name,
    server,
    ...(caData === undefined ? {} : { caData }),
    ...(tlsServerName === undefined ? {} : { tlsServerName }),
    skipTLSVerify: false,
  };
}

function validUser(entry: unknown): ValidatedKubeconfig["users"][number] {
  const named = objectOf(entry, "kubeconfig user entry", ALLOWED.namedUser);
  const name = stringOf(named.name, "kubeconfig user name");
  const user = objectOf(named.user, `kubeconfig user "${name}"`, ALLOWED.user);
  const token = optionalString(user.token, `kubeconfig user "${name}" token`);
  const certData = optionalString(
    user["client-certificate-data"],
    `kubeconfig user "${name}" client-certificate-data`,
  );
  const keyData = optionalString(
    user["client-key-data"],
    `kubeconfig user "${name}" client-key-data`,
  );
  return {
    name,
    ...(token === undefined ? {} : { token }),
    ...(certData === undefined ? {} : { certData }),
    ...(keyData === undefined ? {} : { keyData }),
  };
}

function validContext(entry: unknown): ValidatedKubeconfig["contexts"][number] {
  const named = objectOf(entry, "kubeconfig context entry", ALLOWED.namedContext);
  const name = stringOf(named.name, "kubeconfig context name");
  const context = objectOf(named.context, `kubeconfig context "${name}"`, ALLOWED.context);
  const namespace = optionalString(context.namespace, `kubeconfig context "${name}" namespace`);
  return {
    name,
    cluster: stringOf(context.cluster, `kubeconfig context "${name}" cluster`),
    user: stringOf(context.user, `kubeconfig context "${name}" user`),
    ...(namespace === undefined ? {} : { namespace }),
  };
}

/** An object with only allowed keys; a refused key is named (its value never is). */
function objectOf(
  value: unknown,
  what: string,
  allowed: readonly string[],
): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new KubeconfigRefused(`${what} is not a mapping`);
  const refused = Object.keys(value).filter((key) => !allowed.includes(key));
  if (refused.length > 0)
    throw new KubeconfigRefused(
      `${what} has ${refused.map((key) => JSON.stringify(key.slice(0, 64))).join(", ")}, which a record may not use (allowed: ${allowed.join(", ") || "nothing"}): a record names a server, its CA data and inline credentials only`,
    );
  return value as Record<string, unknown>;
}

function listOf(value: unknown, what: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new KubeconfigRefused(`kubeconfig ${what} is not a list`);
  return value;
}

function stringOf(value: unknown, what: string): string {
  if (typeof value !== "string" || value.length === 0)
    throw new KubeconfigRefused(`${what} is missing or not a string`);
  return value;
}

function optionalString(value: unknown, what: string): string | undefined {
  return value === undefined ? undefined : stringOf(value, what);
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
