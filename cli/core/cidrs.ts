/**
 * Source CIDRs for a cluster's webhook token: exact networks, not so wide they mean "anyone", and
 * (for a Lambda function URL) only ranges a function URL can see as a caller's address. Pure.
 */
import { isIP } from "node:net";

interface Range {
  readonly family: 4 | 6;
  readonly first: bigint;
  readonly last: bigint;
}

/** The widest prefix accepted; anything wider is `--allow-any-source` in disguise. */
export const WIDEST_PREFIX = { 4: 8, 6: 16 } as const;

// Never a function URL caller's source: private, shared (CGNAT), loopback, link-local,
// unspecified, benchmarking, multicast and reserved ranges, NAT64, in both families.
const NOT_PUBLIC: readonly Range[] = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "224.0.0.0/4",
  "240.0.0.0/4",
  "::/127",
  "64:ff9b::/96",
  "fc00::/7",
  "fe80::/10",
  "ff00::/8",
].map((cidr) => rangeOf(cidr));

/** Why `cidr` cannot pin a cluster's token, or undefined when it can. */
export function cidrProblem(cidr: string): string | undefined {
  const family = isIP(cidr);
  if (family !== 0)
    return `${JSON.stringify(cidr)} is an address, not a CIDR: add /${family === 4 ? 32 : 128} for that one address`;
  const [address = "", bits = "", ...rest] = cidr.split("/");
  const addressFamily = isIP(address) === 6 ? 6 : isIP(address) === 4 ? 4 : 0;
  const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : Number.NaN;
  const width = addressFamily === 4 ? 32 : 128;
  if (rest.length > 0 || addressFamily === 0 || !(prefix >= 0 && prefix <= width))
    return `${JSON.stringify(cidr)}: expected CIDRs such as 203.0.113.0/24`;
  if (prefix < WIDEST_PREFIX[addressFamily])
    return `${cidr} is wider than /${WIDEST_PREFIX[addressFamily]} and accepts (nearly) any address: give your API server's egress addresses, or pass --allow-any-source, which says so (see the security model)`;
  const range = rangeOf(cidr);
  const network = `${address}/${prefix}`;
  if (toBits(address, addressFamily) !== range.first)
    return `${network} has host bits set: the network is ${fromBits(range.first, range.family)}/${prefix}`;
  return undefined;
}

/** The CIDRs that reach into ranges a function URL never sees as a caller's source. */
export function nonPublicCidrs(cidrs: readonly string[]): string[] {
  return cidrs.filter((cidr) => {
    const range = rangeOf(cidr);
    return NOT_PUBLIC.some(
      (other) =>
        other.family === range.family && other.first <= range.last && range.first <= other.last,
    );
  });
}

function rangeOf(cidr: string): Range {
  const [address = "", bits = "0"] = cidr.split("/");
  const family = isIP(address) === 6 ? 6 : 4;
  const width = BigInt(family === 4 ? 32 : 128);
  const hostBits = width - BigInt(bits);
  const first = (toBits(address, family) >> hostBits) << hostBits;
  return { family, first, last: first + (1n << hostBits) - 1n };
}

function toBits(address: string, family: 4 | 6): bigint {
  if (family === 4)
    return address.split(".").reduce((value, octet) => (value << 8n) | BigInt(Number(octet)), 0n);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const withTail = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) => {
    const high = (Number(a) << 8) | Number(b);
    const low = (Number(c) << 8) | Number(d);
    return `${high.toString(16)}:${low.toString(16)}`;
  });
  const [head = "", tail] = withTail.split("::");
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const zeros = Array(8 - headGroups.length - tailGroups.length).fill("0");
  const groups = tail === undefined ? headGroups : [...headGroups, ...zeros, ...tailGroups];
  return groups.reduce((value, group) => (value << 16n) | BigInt(Number.parseInt(group, 16)), 0n);
}

function fromBits(value: bigint, family: 4 | 6): string {
  if (family === 4)
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join(".");
  const groups = Array.from({ length: 8 }, (_, index) =>
    ((value >> BigInt(112 - index * 16)) & 0xffffn).toString(16),
  );
  return groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
}
