/**
 * Where the refresher's connections to API servers come from (the stack's network mode), and the
 * one classification of API server addresses that both the refresher and the CLI apply. Pure.
 */
import { BlockList, isIP } from "node:net";

/**
 * `public`: Lambda's own network, AWS's public addresses. `static-egress`: a VPC whose NAT gateways
 * have retained Elastic IPs (the stack's `RefresherEgressAddresses`). `vpc`: the user's VPC, which
 * may reach private API servers (VPN, Direct Connect, Transit Gateway).
 */
export const REFRESHER_NETWORK_MODES = ["public", "static-egress", "vpc"] as const;
export type RefresherNetworkMode = (typeof REFRESHER_NETWORK_MODES)[number];

export function isRefresherNetworkMode(value: string): value is RefresherNetworkMode {
  return (REFRESHER_NETWORK_MODES as readonly string[]).includes(value);
}

/**
 * `local`: from Lambda, the function itself (loopback carries the runtime API,
 * AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001) or AWS's instance metadata service: never a cluster, in
 * any network mode. `private`: reachable only inside a private network (RFC 1918, CGNAT, ULA): a
 * cluster only in the user's VPC. `public`: an address anyone may route to. `name`: a host name,
 * which is not resolved (it may resolve differently from the operator's machine and from AWS).
 */
export type AddressClass = "local" | "private" | "public" | "name";

const LOCAL = new BlockList();
LOCAL.addSubnet("127.0.0.0", 8, "ipv4");
LOCAL.addSubnet("0.0.0.0", 8, "ipv4");
LOCAL.addSubnet("169.254.0.0", 16, "ipv4");
LOCAL.addAddress("::1", "ipv6");
LOCAL.addAddress("::", "ipv6");
LOCAL.addSubnet("fe80::", 10, "ipv6");
LOCAL.addAddress("fd00:ec2::254", "ipv6");
LOCAL.addSubnet("::ffff:127.0.0.0", 104, "ipv6");
LOCAL.addSubnet("::ffff:169.254.0.0", 112, "ipv6");

const PRIVATE = new BlockList();
PRIVATE.addSubnet("10.0.0.0", 8, "ipv4");
PRIVATE.addSubnet("172.16.0.0", 12, "ipv4");
PRIVATE.addSubnet("192.168.0.0", 16, "ipv4");
PRIVATE.addSubnet("100.64.0.0", 10, "ipv4");
PRIVATE.addSubnet("fc00::", 7, "ipv6");
PRIVATE.addSubnet("::ffff:10.0.0.0", 104, "ipv6");
PRIVATE.addSubnet("::ffff:172.16.0.0", 108, "ipv6");
PRIVATE.addSubnet("::ffff:192.168.0.0", 112, "ipv6");
PRIVATE.addSubnet("::ffff:100.64.0.0", 106, "ipv6");

/** The class of a URL's host (`url.hostname`, IPv6 in brackets or not). */
export function classifyHost(hostname: string): AddressClass {
  // A fully qualified name's trailing dot ("localhost.") names the same host.
  const host = hostname
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "")
    .toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost")) return "local";
  const family = isIP(host);
  if (family === 0) return "name";
  const type = family === 6 ? "ipv6" : "ipv4";
  if (LOCAL.check(host, type)) return "local";
  return PRIVATE.check(host, type) ? "private" : "public";
}

/**
 * Why the refresher, in this network mode, cannot reach an API server at `server` (an https URL),
 * in one line, or undefined when it may. Host names pass: whether they resolve to a reachable
 * address is only known where the refresher runs.
 */
export function refresherRouteProblem(
  server: string,
  network: RefresherNetworkMode,
): string | undefined {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return `${JSON.stringify(server)} is not a URL`;
  }
  const found = classifyHost(url.hostname);
  if (found === "local")
    return `${url.host} is a loopback, link-local or metadata address: from Lambda that is the function itself or AWS's metadata service, never your cluster`;
  if (found === "private" && network !== "vpc")
    return `${url.host} is a private address (RFC 1918, CGNAT or ULA), which the refresher (network ${network}) cannot reach: only a stack with refresherNetwork vpc, inside a network that routes to it, can`;
  return undefined;
}
