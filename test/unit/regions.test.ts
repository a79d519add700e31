/** Region names checked against the AWS SDK's partition table, before any call is made. */
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { partition } from "@aws-sdk/core/client";
import { describe, expect, it } from "vitest";
import { InputError } from "../../cli/core/inputs.ts";
import { checkRegion, knownRegions, parseRegion, regionChoice } from "../../cli/core/regions.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");

describe("checkRegion", () => {
  it("reads the table the SDK resolves endpoints from", () => {
    const regions = knownRegions();
    expect(regions).toEqual(
      expect.arrayContaining(["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"]),
    );
    // The SDK's own partition() finds every listed name as a listed region of its partition.
    for (const region of regions)
      expect((partition(region) as { description?: string }).description).toBeDefined();
  });

  it.each(["us-east-1", "eu-central-2", "cn-northwest-1", "us-gov-east-1", "us-iso-east-1"])(
    "accepts %s quietly",
    (region) => {
      expect(checkRegion(region, "--region")).toEqual({});
    },
  );

  it.each([
    ["us-east1", "did you mean us-east-1?"],
    ["useast-1", "did you mean us-east-1?"],
    ["us-east-1a", "us-east-1a is an availability zone of us-east-1"],
    ["eu-west", ""],
    ["virginia", ""],
    ["aws-global", ""],
    ["", ""],
  ])("refuses %j, which fits no partition's pattern", (region, hint) => {
    const { problem } = checkRegion(region, "--region");
    expect(problem).toContain(
      `--region: ${JSON.stringify(region)} is not an AWS region name (expected the form us-east-1`,
    );
    expect(problem).toContain(hint);
  });

  it("warns of a name that fits a partition's pattern but that the SDK does not list", () => {
    expect(checkRegion("ap-southeast-99", "--region")).toEqual({
      warning:
        "--region: ap-southeast-99 is not a region this CLI's AWS SDK knows in partition aws (a region newer than the CLI, or a typo?); using it anyway",
    });
    expect(checkRegion("cn-south-7", "AWS_REGION").warning).toContain("in partition aws-cn");
  });

  it("checks AWS_REGION when --region is not given, and --region over it", () => {
    expect(() => regionChoice(undefined, { AWS_REGION: "us-east1" })).toThrow(
      new InputError(
        'AWS_REGION: "us-east1" is not an AWS region name (expected the form us-east-1: area, direction, number; did you mean us-east-1?): fix AWS_REGION, or pass --region',
      ),
    );
    expect(regionChoice("eu-west-1", { AWS_REGION: "us-east1" })).toEqual({});
    expect(regionChoice(undefined, {})).toEqual({});
    expect(regionChoice(undefined, { AWS_REGION: "eu-west-9" }).warning).toMatch(/^AWS_REGION: /);
    expect(() => parseRegion("us-east1")).toThrow(InputError);
  });
});

describe("the CLI", () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    promisify(execFile)(process.execPath, [join(repo, "cli/ecr-anywhere.ts"), ...args], {
      env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...env },
    }).then(
      (done) => ({ code: 0, stderr: done.stderr }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    );

  it("refuses a mistyped region before any call, naming where it came from (exit 2)", async () => {
    const flag = await run(["--region", "us-east1", "status"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain(
      "option '--region <region>' argument 'us-east1' is invalid. \"us-east1\" is not an AWS region name (expected the form us-east-1",
    );
    const env = await run(["status"], { AWS_REGION: "eu-west" });
    expect(env.code).toBe(2);
    expect(env.stderr).toContain('ecr-anywhere: AWS_REGION: "eu-west" is not an AWS region name');
  });
});
