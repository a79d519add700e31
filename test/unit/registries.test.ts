import { describe, expect, it } from "vitest";
import { parseEcrHost, regionsOf, selectRegistries } from "../../functions/core/registries.ts";

const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const WEST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const OTHER_EAST = "210987654321.dkr.ecr.us-east-1.amazonaws.com";
const ANNOTATION = "ecr-anywhere.centml.ai/registries";

describe("parseEcrHost", () => {
  it.each([
    [EAST, "123456789012", "us-east-1"],
    ["123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "123456789012", "us-gov-west-1"],
    ["123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "123456789012", "cn-north-1"],
    ["123456789012.dkr.ecr.ap-southeast-3.amazonaws.com", "123456789012", "ap-southeast-3"],
  ])("reads %s", (host, accountId, region) => {
    expect(parseEcrHost(host)).toEqual({ host, accountId, region });
  });

  it.each([
    "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "12345678901.dkr.ecr.us-east-1.amazonaws.com",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
    "public.ecr.aws",
    "docker.io",
    "",
  ])("refuses %s", (host) => {
    expect(parseEcrHost(host)).toBeUndefined();
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
      message: expect.stringContaining("not ECR registries: docker.io"),
    });
    expect(selectRegistries(" , ", [EAST], ANNOTATION)).toMatchObject({
      ok: false,
      message: expect.stringContaining("lists no registry"),
    });
  });

  it("groups registries into one token request per region", () => {
    const selection = selectRegistries(undefined, [WEST, EAST, OTHER_EAST], ANNOTATION);
    expect(selection.ok && regionsOf(selection.registries)).toEqual(["eu-west-1", "us-east-1"]);
  });
});
