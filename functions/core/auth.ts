/**
 * Who is calling the webhook. Pure. A cluster authenticates with a token, either in the URL path
 * (`/v1/clusters/<id>/<token>`, for managed control planes, where the URL is all one can set) or,
 * when its kube-apiserver is configured with an admission kubeconfig, in an `Authorization: Bearer`
 * header with a path that carries no secret (`/v1/clusters/<id>`): kube-apiserver repeats the URL
 * in the errors users see, never the header.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { BlockList, isIP } from "node:net";
import { isDns1123Label } from "./cluster-record.ts";

export interface WebhookCaller {
  readonly clusterId: string;
  readonly token: string;
  /** Where the token came from. */
  readonly via: "path" | "header";
}

// 256 random bits are 43 base64url characters; longer tokens are accepted, padding is not.
const TOKEN = "[A-Za-z0-9_-]{43,512}";
const WEBHOOK_PATH = new RegExp(`^/v1/clusters/([^/]{1,63})(?:/(${TOKEN}))?$`);
const BEARER = new RegExp(`^Bearer (${TOKEN})$`);

/**
 * Reads `/v1/clusters/<cluster-id>/<token>`, or `/v1/clusters/<cluster-id>` with the token in
 * `Authorization: Bearer <token>`. A token in both places, or in neither, is not a caller.
 */
export function parseWebhookCaller(
  rawPath: string,
  authorization: string | undefined,
): WebhookCaller | undefined {
  const match = WEBHOOK_PATH.exec(rawPath);
  if (!match) return undefined;
  const [, clusterId, pathToken] = match;
  if (clusterId === undefined || !isDns1123Label(clusterId)) return undefined;
  const headerToken = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
  if (authorization !== undefined && headerToken === undefined) return undefined;
  if (pathToken !== undefined && headerToken !== undefined) return undefined;
  if (pathToken !== undefined) return { clusterId, token: pathToken, via: "path" };
  if (headerToken !== undefined) return { clusterId, token: headerToken, via: "header" };
  return undefined;
}

/**
 * Removes the webhook token from any `/v1/clusters/<id>/<token>` URL in `text`: kube-apiserver
 * repeats that URL in its own error messages, which reach logs and Events.
 */
export function redactWebhookTokens(text: string): string {
  return text.replace(/(\/v1\/clusters\/[^/\s"'?]+)\/[^\s"'?]+/g, "$1/<redacted>");
}

export function sha256Hex(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex");
}

/**
 * True when the token's SHA-256 equals one of the stored hashes. Every hash is compared, in
 * constant time, so timing tells nothing about which one (if any) matched.
 */
export function tokenMatches(token: string, storedSha256Hex: readonly string[]): boolean {
  const presented = createHash("sha256").update(token, "utf8").digest();
  let matched = false;
  for (const stored of storedSha256Hex) {
    const expected = Buffer.from(stored, "hex");
    if (expected.length === presented.length && timingSafeEqual(expected, presented))
      matched = true;
  }
  return matched;
}

/** True when no CIDRs are configured, or the source address lies in one of them. */
export function sourceAllowed(
  sourceIp: string | undefined,
  cidrs: readonly string[] | undefined,
): boolean {
  if (cidrs === undefined || cidrs.length === 0) return true;
  if (sourceIp === undefined) return false;
  const family = isIP(sourceIp);
  if (family === 0) return false;
  const allowed = new BlockList();
  for (const cidr of cidrs) {
    const [network = "", prefix = ""] = cidr.split("/");
    allowed.addSubnet(network, Number(prefix), isIP(network) === 6 ? "ipv6" : "ipv4");
  }
  return allowed.check(sourceIp, family === 6 ? "ipv6" : "ipv4");
}

export type AuthFailure =
  | "malformed-path"
  | "unknown-cluster"
  | "wrong-token"
  | "source-not-allowed";
