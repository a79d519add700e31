/** Stack settings from CDK context (cdk.json or `-c key=value`), validated with clear errors. Pure. */
import { Duration } from "aws-cdk-lib";
import * as logs from "aws-cdk-lib/aws-logs";
import * as v from "valibot";
import { isRecordsName } from "../functions/core/contract.ts";
import { REFRESHER_NETWORK_MODES } from "../functions/core/network.ts";
import { isEcrHost, parseRegistryHost } from "../functions/core/registries.ts";
import { TOKEN_SCOPING_MODES } from "../functions/core/token-scoping.ts";
import { parseWith } from "../functions/core/validation.ts";
import type { RefresherNetworkProps } from "./constructs/network.ts";
import type { EcrAnywhereProps } from "./ecr-anywhere.ts";

export const CONTEXT_PREFIX = "ecr-anywhere:";

// `-c key=a,b` arrives as a string, cdk.json as a list: accept both.
const list = <T extends v.GenericSchema<string, string>>(item: T) =>
  v.pipe(
    v.union([v.array(v.string()), v.string()]),
    v.transform((value) =>
      typeof value === "string"
        ? value
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean)
        : value,
    ),
    v.array(item),
  );
const wholeNumber = (min: number, max: number) =>
  v.pipe(
    v.union([v.number(), v.pipe(v.string(), v.regex(/^\d+$/), v.transform(Number))]),
    v.integer(),
    v.minValue(min),
    v.maxValue(max),
  );

// cdk.json gives a boolean, `-c key=value` a string.
const flag = v.pipe(
  v.union([v.boolean(), v.picklist(["true", "false"])]),
  v.transform((value) => value === true || value === "true"),
);

const ContextSchema = v.strictObject({
  // An empty list is not "unset": it would deploy a webhook whose tokens pull nothing.
  allowedRegistries: v.optional(
    v.pipe(
      list(
        v.pipe(
          v.string(),
          // A registry host is no secret: the message shows what was refused, and the two forms.
          v.check(
            isEcrHost,
            (issue) =>
              `${registryHostProblem(String(issue.input))}; give the hosts as a JSON list in cdk.json (["host", …]) or comma-separated with -c ${CONTEXT_PREFIX}allowedRegistries=host1,host2`,
          ),
        ),
      ),
      v.check(
        (hosts) => hosts.length > 0,
        "an empty list would let tokens pull nothing: leave it unset for this stack's own registry, or list the registry hosts",
      ),
    ),
  ),
  clusterRoleArns: v.optional(
    list(v.pipe(v.string(), v.regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, "an IAM role ARN"))),
  ),
  refreshIntervalMinutes: v.optional(wholeNumber(1, 360)),
  refreshBeforeHours: v.optional(wholeNumber(1, 11)),
  labelPrefix: v.optional(v.string()),
  records: v.optional(
    v.pipe(v.string(), v.check(isRecordsName, "a records name (1 to 200 of A-Za-z0-9_.-)")),
  ),
  alarmEmail: v.optional(v.pipe(v.string(), v.email())),
  webhookReservedConcurrency: v.optional(wholeNumber(1, 1000)),
  refresherMarkConcurrency: v.optional(wholeNumber(1, 500)),
  logRetentionDays: v.optional(wholeNumber(1, 3653)),
  refreshMode: v.optional(v.picklist(["inline", "fanout"])),
  pullThroughCache: v.optional(flag),
  fanoutConcurrency: v.optional(wholeNumber(2, 1000)),
  tokenScoping: v.optional(v.picklist(TOKEN_SCOPING_MODES)),
  refresherNetwork: v.optional(v.picklist(REFRESHER_NETWORK_MODES)),
  natGatewayPerAz: v.optional(flag),
  vpcId: v.optional(v.pipe(v.string(), v.regex(/^vpc-[0-9a-f]{8,17}$/, "a VPC id"))),
  vpcSubnetIds: v.optional(
    list(v.pipe(v.string(), v.regex(/^subnet-[0-9a-f]{8,17}$/, "a subnet id"))),
  ),
  vpcSecurityGroupIds: v.optional(
    list(v.pipe(v.string(), v.regex(/^sg-[0-9a-f]{8,17}$/, "a security group id"))),
  ),
  stackName: v.optional(
    v.pipe(v.string(), v.regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, "a CloudFormation stack name")),
  ),
});

function registryHostProblem(host: string): string {
  const parsed = parseRegistryHost(host);
  return parsed.ok ? `${JSON.stringify(host)} is not an ECR registry host` : parsed.problem;
}

/** Reads every `ecr-anywhere:*` context value; unknown keys are errors, so typos do not pass silently. */
export function propsFromContext(context: Readonly<Record<string, unknown>>): {
  stackName: string;
  props: EcrAnywhereProps;
} {
  const ours = Object.fromEntries(
    Object.entries(context)
      .filter(([key]) => key.startsWith(CONTEXT_PREFIX))
      .map(([key, value]) => [key.slice(CONTEXT_PREFIX.length), value === "" ? undefined : value]),
  );
  const known = Object.keys(ContextSchema.entries);
  const unknown = Object.keys(ours).filter((key) => !known.includes(key));
  if (unknown.length > 0)
    throw new Error(
      `unknown CDK context ${unknown.map((key) => CONTEXT_PREFIX + key).join(", ")} (a typo?): the ${CONTEXT_PREFIX}* keys are ${known.join(", ")}`,
    );
  const parsed = parseWith(ContextSchema, ours);
  if (!parsed.ok) throw new Error(`invalid CDK context (${CONTEXT_PREFIX}*): ${parsed.error}`);
  const c = parsed.value;
  const props: EcrAnywhereProps = {
    allowedRegistries: c.allowedRegistries,
    clusterRoleArns: c.clusterRoleArns,
    refreshInterval:
      c.refreshIntervalMinutes === undefined
        ? undefined
        : Duration.minutes(c.refreshIntervalMinutes),
    refreshBefore:
      c.refreshBeforeHours === undefined ? undefined : Duration.hours(c.refreshBeforeHours),
    labelPrefix: c.labelPrefix,
    records: c.records,
    alarmEmail: c.alarmEmail,
    webhookReservedConcurrency: c.webhookReservedConcurrency,
    refresherMarkConcurrency: c.refresherMarkConcurrency,
    logRetention: c.logRetentionDays === undefined ? undefined : retention(c.logRetentionDays),
    refreshMode: c.refreshMode,
    pullThroughCache: c.pullThroughCache,
    fanoutConcurrency: c.fanoutConcurrency,
    tokenScoping: c.tokenScoping,
    refresherNetwork: refresherNetwork(c),
  };
  return { stackName: c.stackName ?? "EcrAnywhere", props };
}

/** The network settings go together: each belongs to one mode, and `vpc` needs its VPC. */
function refresherNetwork(
  c: v.InferOutput<typeof ContextSchema>,
): RefresherNetworkProps | undefined {
  const mode = c.refresherNetwork ?? "public";
  const misplaced = [
    ...(mode !== "static-egress" && c.natGatewayPerAz !== undefined ? ["natGatewayPerAz"] : []),
    ...(mode !== "vpc"
      ? (["vpcId", "vpcSubnetIds", "vpcSecurityGroupIds"] as const).filter(
          (key) => c[key] !== undefined,
        )
      : []),
  ];
  if (misplaced.length > 0)
    throw new Error(
      `invalid CDK context (${CONTEXT_PREFIX}*): ${misplaced.join(", ")} ${misplaced.length === 1 ? "does" : "do"} not apply to refresherNetwork ${mode}`,
    );
  if (mode === "static-egress") return { mode, natGatewayPerAz: c.natGatewayPerAz };
  if (mode === "public") return c.refresherNetwork === undefined ? undefined : { mode };
  if (!c.vpcId || !c.vpcSubnetIds)
    throw new Error(
      `invalid CDK context (${CONTEXT_PREFIX}*): refresherNetwork vpc needs vpcId and vpcSubnetIds (and optionally vpcSecurityGroupIds)`,
    );
  return {
    mode,
    vpc: c.vpcId,
    subnets: c.vpcSubnetIds,
    securityGroups: c.vpcSecurityGroupIds,
  };
}

function retention(days: number): logs.RetentionDays {
  const allowed = Object.values(logs.RetentionDays).filter(
    (value): value is number => typeof value === "number",
  );
  if (!allowed.includes(days))
    throw new Error(
      `${CONTEXT_PREFIX}logRetentionDays must be one of ${allowed.sort((a, b) => a - b).join(", ")}`,
    );
  return days as logs.RetentionDays;
}
