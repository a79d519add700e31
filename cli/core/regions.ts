/**
 * Is a region name one AWS could have? Checked against the AWS SDK's own partition data, the
 * table the SDK resolves every endpoint from, so it is as current as the SDK bundled in this CLI.
 * A name that fits no partition's pattern (`us-east1`, `us-east-1a`) is a typo: every call would
 * go to a host that does not exist, and fail as if a permission were missing. A name that fits a
 * pattern but that the SDK does not list may be a region newer than the SDK: a warning. Pure.
 */
import type { PartitionsInfo } from "@aws-sdk/core/client";
// @ts-expect-error The SDK publishes this module's types under dist-types/, not beside it (its
// `partition()` answers every name, so the patterns are read from the table it uses).
import { partitionsInfo } from "../../node_modules/@aws-sdk/core/dist-es/submodules/client/util-endpoints/lib/aws/partitions.js";
import { InputError } from "./inputs.ts";

const PARTITIONS: PartitionsInfo["partitions"] = (partitionsInfo as PartitionsInfo).partitions;

/** Region names the SDK lists (its `*-global` pseudo-regions fit no pattern, so never pass). */
export function knownRegions(): string[] {
  return PARTITIONS.flatMap((partition) => Object.keys(partition.regions));
}

export interface RegionCheck {
  /** Fits no partition's pattern: refused. */
  readonly problem?: string;
  /** Fits a pattern, but this SDK does not list it. */
  readonly warning?: string;
}

/** What is wrong with `region`, if anything, worded for where it came from (`--region`, `AWS_REGION`). */
export function checkRegion(region: string, source: string): RegionCheck {
  const partition = PARTITIONS.find((candidate) => new RegExp(candidate.regionRegex).test(region));
  const known = knownRegions();
  if (!partition) {
    return {
      problem: `${source}: ${JSON.stringify(region)} is not an AWS region name (expected the form us-east-1: area, direction, number${likelyMeant(region, known)})`,
    };
  }
  if (partition.regions[region] !== undefined) return {};
  return {
    warning: `${source}: ${region} is not a region this CLI's AWS SDK knows in partition ${partition.id} (a region newer than the CLI, or a typo?); using it anyway`,
  };
}

/** A listed region the typo is close to: hyphens misplaced, or an availability zone's letter. */
function likelyMeant(region: string, known: readonly string[]): string {
  const squeezed = region.replaceAll("-", "").toLowerCase();
  const respelled = known.find((name) => name.replaceAll("-", "") === squeezed);
  if (respelled) return `; did you mean ${respelled}?`;
  const zoneOf = known.find(
    (name) => region === `${name}${region.slice(-1)}` && /[a-z]$/.test(region),
  );
  return zoneOf ? `; ${region} is an availability zone of ${zoneOf}` : "";
}

/** `--region`'s parser: a name that fits no partition is bad input (exit 2). */
export function parseRegion(value: string): string {
  const { problem } = checkRegion(value, "--region");
  if (problem) throw new InputError(problem.replace(/^--region: /, ""));
  return value;
}

/**
 * The region the AWS clients will use, from `--region` or else `AWS_REGION`, checked: one that fits
 * no partition is bad input (exit 2), one the SDK does not list draws a warning. A profile's region
 * is the SDK's to read, later, and is not checked here.
 */
export function regionChoice(flag: string | undefined, env: NodeJS.ProcessEnv): RegionCheck {
  if (flag !== undefined) return checkRegion(flag, "--region");
  if (!env.AWS_REGION) return {};
  const check = checkRegion(env.AWS_REGION, "AWS_REGION");
  if (check.problem) throw new InputError(`${check.problem}: fix AWS_REGION, or pass --region`);
  return check;
}
