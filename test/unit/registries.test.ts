import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  isEcrHost,
  parseEcrHost,
  parseRegistryHost,
  partitionOf,
  partitionProblem,
  selectRegistries,
  tokenEndpointsOf,
} from "../../functions/core/registries.ts";

const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const WEST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const OTHER_EAST = "210987654321.dkr.ecr.us-east-1.amazonaws.com";
const ANNOTATION = "ecr-anywhere.centml.ai/registries";

describe("registry host grammar", () => {
  it.each([
    [EAST, "us-east-1", "aws", false, false],
    [
      "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
      "us-gov-west-1",
      "aws-us-gov",
      true,
      false,
    ],
    ["123456789012.dkr.ecr-fips.us-east-2.amazonaws.com", "us-east-2", "aws", true, false],
    ["123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "cn-north-1", "aws-cn", false, false],
    ["123456789012.dkr.ecr.ap-southeast-3.amazonaws.com", "ap-southeast-3", "aws", false, false],
    ["123456789012.dkr-ecr.eu-west-1.on.aws", "eu-west-1", "aws", false, true],
    ["123456789012.dkr-ecr-fips.us-west-2.on.aws", "us-west-2", "aws", true, true],
    ["123456789012.dkr-ecr.us-gov-east-1.on.aws", "us-gov-east-1", "aws-us-gov", false, true],
    [
      "123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn",
      "cn-northwest-1",
      "aws-cn",
      false,
      true,
    ],
  ])("reads %s", (host, region, partition, fips, dualStack) => {
    expect(parseEcrHost(host)).toEqual({
      host,
      accountId: "123456789012",
      region,
      partition,
      fips,
      dualStack,
      kind: "ecr",
    });
  });

  it("reads ECR Public's one host, whose token is minted in us-east-1", () => {
    expect(parseEcrHost("public.ecr.aws")).toEqual({
      host: "public.ecr.aws",
      accountId: "",
      region: "us-east-1",
      partition: "aws",
      fips: false,
      dualStack: false,
      kind: "ecr-public",
    });
    for (const partition of ["aws-cn", "aws-us-gov"] as const)
      expect(partitionProblem("public.ecr.aws", partition)).toMatch(
        /ECR Public\) exists only in partition aws/,
      );
    expect(partitionProblem("public.ecr.aws", "aws")).toBeUndefined();
  });

  it.each([
    [
      "123456789012.dkr.ecr.us-east-1.amazonaws.com.cn",
      /registries in us-east-1 \(partition aws\) are under amazonaws\.com$/,
    ],
    [
      "123456789012.dkr.ecr.cn-north-1.amazonaws.com",
      /partition aws-cn\) are under amazonaws\.com\.cn$/,
    ],
    ["123456789012.dkr-ecr.cn-north-1.on.aws", /are under on\.amazonwebservices\.com\.cn$/],
    ["123456789012.dkr.ecr-fips.eu-west-1.amazonaws.com", /ECR has no FIPS endpoint in eu-west-1/],
    ["123456789012.dkr-ecr-fips.ap-south-1.on.aws", /ECR has no FIPS endpoint in ap-south-1/],
    ["https://123456789012.dkr.ecr.us-east-1.amazonaws.com", /is not an ECR registry host/],
    ["123456789012.dkr.ecr.us-east-1.amazonaws.com:443", /is not an ECR registry host/],
    ["123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/", /is not an ECR registry host/],
    ["123456789012.DKR.ECR.us-east-1.amazonaws.com", /is not an ECR registry host/],
    ["123456789012.dkr.ecr.us-east-1.amazonaws.com.", /is not an ECR registry host/],
    ["12345678901.dkr.ecr.us-east-1.amazonaws.com", /is not an ECR registry host/],
    ["123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example", /is not an ECR registry host/],
    ["https://public.ecr.aws", /is not an ECR registry host/],
    ["public.ecr.aws/v2/", /is not an ECR registry host/],
    ["PUBLIC.ECR.AWS", /is not an ECR registry host/],
    ["public.ecr.aws:443", /is not an ECR registry host/],
    ["gallery.ecr.aws", /is not an ECR registry host/],
    ["docker.io", /is not an ECR registry host/],
    ["", /is not an ECR registry host/],
  ])("refuses %s, saying why", (host, problem) => {
    const parsed = parseRegistryHost(host);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.problem).toMatch(problem);
    expect(parseEcrHost(host)).toBeUndefined();
  });

  const account = fc.stringMatching(/^\d{12}$/);
  const region = fc.constantFrom(
    "us-east-1",
    "us-west-2",
    "eu-central-1",
    "ap-northeast-3",
    "sa-east-1",
    "cn-north-1",
    "us-gov-west-1",
  );
  const validHost = fc.tuple(account, region, fc.boolean()).map(([id, name, dualStack]) => {
    const partition = partitionOf(name);
    const domain = dualStack
      ? partition === "aws-cn"
        ? "on.amazonwebservices.com.cn"
        : "on.aws"
      : partition === "aws-cn"
        ? "amazonaws.com.cn"
        : "amazonaws.com";
    return `${id}.${dualStack ? "dkr-ecr" : "dkr.ecr"}.${name}.${domain}`;
  });

  const anyValidHost = fc.oneof(validHost, fc.constant("public.ecr.aws"));

  it("accepts every well-formed host of every partition", () => {
    fc.assert(fc.property(anyValidHost, (host) => parseEcrHost(host)?.host === host));
  });

  it("refuses any well-formed host with a scheme, port, path, upper case or trailing text", () => {
    const mangle = fc.constantFrom(
      (host: string) => `https://${host}`,
      (host: string) => `${host}:443`,
      (host: string) => `${host}/v2`,
      (host: string) => host.toUpperCase(),
      (host: string) => `${host}.`,
      (host: string) => ` ${host}`,
      (host: string) => `${host}.example.com`,
    );
    fc.assert(fc.property(anyValidHost, mangle, (host, change) => !isEcrHost(change(host))));
  });
});

describe("selectRegistries", () => {
  it("defaults to every registry of the record", () => {
    const selection = selectRegistries(undefined, [EAST, WEST], ANNOTATION);
    expect(selection).toMatchObject({ ok: true });
    expect(selection.ok && selection.registries.map((registry) => registry.host)).toEqual([
      EAST,
      WEST,
    ]);
  });

  it("narrows to the annotation, trimmed, lower-cased and de-duplicated", () => {
    const selection = selectRegistries(
      ` ${WEST.toUpperCase()} ,${WEST},`,
      [EAST, WEST],
      ANNOTATION,
    );
    expect(selection.ok && selection.registries.map((registry) => registry.host)).toEqual([WEST]);
  });

  it("refuses a host the record does not allow, naming it", () => {
    const selection = selectRegistries(`${EAST},${OTHER_EAST}`, [EAST, WEST], ANNOTATION);
    expect(selection).toEqual({
      ok: false,
      message: `this cluster may not use registry ${OTHER_EAST}; allowed: ${EAST}, ${WEST}`,
    });
  });

  it("refuses hosts that are not ECR registries, and an empty annotation", () => {
    expect(selectRegistries("docker.io", [EAST], ANNOTATION)).toMatchObject({
      ok: false,
      message: expect.stringContaining(
        'not ECR registries: "docker.io" is not an ECR registry host',
      ),
    });
    expect(selectRegistries(" , ", [EAST], ANNOTATION)).toMatchObject({
      ok: false,
      message: expect.stringContaining("lists no registry"),
    });
  });

  it("groups registries into one token request per region and endpoint", () => {
    const selection = selectRegistries(undefined, [WEST, EAST, OTHER_EAST], ANNOTATION);
    expect(selection.ok && tokenEndpointsOf(selection.registries)).toEqual([
      { region: "eu-west-1", fips: false, kind: "ecr" },
      { region: "us-east-1", fips: false, kind: "ecr" },
    ]);
    // A dual-stack host shares its region's token; a FIPS host needs the FIPS endpoint's.
    const dualStack = "123456789012.dkr-ecr.us-east-1.on.aws";
    const fips = "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com";
    const mixed = selectRegistries(undefined, [EAST, dualStack, fips], ANNOTATION);
    expect(mixed.ok && tokenEndpointsOf(mixed.registries)).toEqual([
      { region: "us-east-1", fips: false, kind: "ecr" },
      { region: "us-east-1", fips: true, kind: "ecr" },
    ]);
    // ECR Public's token comes from its own API, even in the same region.
    const withPublic = selectRegistries(undefined, [EAST, "public.ecr.aws"], ANNOTATION);
    expect(withPublic.ok && tokenEndpointsOf(withPublic.registries)).toEqual([
      { region: "us-east-1", fips: false, kind: "ecr-public" },
      { region: "us-east-1", fips: false, kind: "ecr" },
    ]);
  });
});
