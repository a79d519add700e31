/**
 * What every construct of this project shares: how a function is built (its own log group and
 * role, the project's esbuild bundle), how props are refused, how a cdk-nag finding is
 * acknowledged, and timings.
 */
import { join } from "node:path";
import { CfnElement, type CfnResource, Duration, Lazy, Stack, Validations } from "aws-cdk-lib";
import type * as ec2 from "aws-cdk-lib/aws-ec2";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as lambdaNodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import type { Construct, IConstruct } from "constructs";
import { ENV } from "../../functions/core/config.ts";
import {
  BUNDLE_ALIASES,
  BUNDLE_MAIN_FIELDS,
  BUNDLE_REQUIRE_SHIM,
  BUNDLE_TARGET,
  LAMBDA_ENTRY_POINTS,
  type LambdaBundleName,
} from "../bundling.ts";

export const WEBHOOK_TIMEOUT = Duration.seconds(10);
export const ADMISSION_BUDGET_MS = 8000;
export const REFRESHER_TIMEOUT = Duration.minutes(10);
export const CLUSTER_CONCURRENCY = 10;
export const CLUSTER_DEADLINE = Duration.seconds(90);

/**
 * Where the functions' code comes from, decided here and nowhere else. Run from this repository's
 * TypeScript sources (`npm run synth`/`deploy`, the tests), each function is bundled from its entry
 * at synth by NodejsFunction. Run from the package's compiled library (`dist/lib/index.mjs`, what
 * `import { EcrAnywhere } from "ecr-anywhere"` loads), each is the bundle `npm run build` prebuilt
 * beside it (`dist/<name>/`), so a user's CDK app needs neither these sources nor esbuild. Both
 * use the options of `infra/bundling.ts`: the templates differ only in asset hashes.
 */
const codeSource: { sources: string } | { prebuilt: string } = import.meta.filename.endsWith(".ts")
  ? { sources: join(import.meta.dirname, "../..") }
  : { prebuilt: join(import.meta.dirname, "..") };

/** The Lambda runtime of every function: the Node.js the bundles target (`BUNDLE_TARGET`). */
export const FUNCTION_RUNTIME = lambda.Runtime.NODEJS_24_X;

/** The entry of one of the project's Lambdas (`infra/bundling.ts`). */
export type LambdaEntry = (typeof LAMBDA_ENTRY_POINTS)[LambdaBundleName];

function bundleName(entry: LambdaEntry): LambdaBundleName {
  const names = Object.keys(LAMBDA_ENTRY_POINTS) as LambdaBundleName[];
  const name = names.find((candidate) => LAMBDA_ENTRY_POINTS[candidate] === entry);
  if (name === undefined) throw new Error(`no Lambda bundle has the entry ${entry}`);
  return name;
}

/** The function: bundled from its entry, or its prebuilt bundle (see `codeSource`). */
function newFunction(
  scope: Construct,
  entry: LambdaEntry,
  props: Omit<lambda.FunctionProps, "code" | "handler">,
): lambda.Function {
  if ("prebuilt" in codeSource)
    return new lambda.Function(scope, "Default", {
      ...props,
      code: lambda.Code.fromAsset(join(codeSource.prebuilt, bundleName(entry))),
      handler: "index.handler",
    });
  return new lambdaNodejs.NodejsFunction(scope, "Default", {
    ...props,
    entry: join(codeSource.sources, entry),
    projectRoot: codeSource.sources,
    depsLockFilePath: join(codeSource.sources, "package-lock.json"),
    handler: "handler",
    bundling: {
      // The same bundle scripts/build.ts makes: ESM, SDK included, env-only credentials.
      forceDockerBundling: false,
      format: lambdaNodejs.OutputFormat.ESM,
      target: BUNDLE_TARGET,
      mainFields: BUNDLE_MAIN_FIELDS,
      minify: true,
      // Source maps ship for decoding traces offline; --enable-source-maps would cost cold start.
      sourceMap: true,
      sourcesContent: false,
      externalModules: [],
      banner: BUNDLE_REQUIRE_SHIM,
      esbuildArgs: Object.fromEntries(
        Object.entries(BUNDLE_ALIASES).map(([from, to]) => [`--alias:${from}`, to]),
      ),
    },
  });
}

/**
 * A function with its own log group and a role that may write only to it, in `scope`, the
 * construct that owns them. The function is that construct's `Default` child, which CDK leaves out
 * of logical IDs: `EcrAnywhere/Webhook/Default` gets the ID a function named `Webhook` would have,
 * so the construct tree, not a copy of CDK's ID algorithm, keeps the function (and its URL) stable.
 */
export function ecrAnywhereFunction(
  scope: Construct,
  options: {
    /** What the function is, in its role's description ("webhook"). */
    name: string;
    entry: LambdaEntry;
    description: string;
    timeout: Duration;
    /** @default 512 MB */
    memorySize?: number | undefined;
    logRetention: logs.RetentionDays;
    environment: Record<string, string>;
    reservedConcurrentExecutions?: number;
    deadLetterQueue?: sqs.IQueue;
    /** A VPC to run in (the refresher's opt-in network); Lambda's own network when absent. */
    placement?: FunctionPlacement | undefined;
  },
): { fn: lambda.Function; logGroup: logs.LogGroup } {
  const logGroup = new logs.LogGroup(scope, "Logs", { retention: options.logRetention });
  // Our own role, so logging is granted on this log group only instead of a managed policy's "*".
  const role = new iam.Role(scope, "Role", {
    assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
    description: `ecr-anywhere ${options.name} execution role`,
  });
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
      resources: [logGroup.logGroupArn, `${logGroup.logGroupArn}:log-stream:*`],
    }),
  );
  const logStreams = `Resource::<${Stack.of(scope).resolve(Stack.of(scope).getLogicalId(logGroup.node.defaultChild as CfnResource))}.Arn>:log-stream:*`;
  acknowledge(role, {
    [`AwsSolutions-IAM5[${logStreams}]`]:
      "Lambda names its log streams at run time; the grant is limited to this function's own log group.",
  });
  const fn = newFunction(scope, options.entry, {
    runtime: FUNCTION_RUNTIME,
    architecture: lambda.Architecture.ARM_64,
    memorySize: options.memorySize ?? 512,
    timeout: options.timeout,
    description: options.description,
    role,
    logGroup,
    reservedConcurrentExecutions: options.reservedConcurrentExecutions,
    deadLetterQueue: options.deadLetterQueue,
    ...(options.placement && withNetworkInterfaceGrant(options.placement, role)),
    // A failed asynchronous run is not retried: the next scheduled run is the retry.
    retryAttempts: options.deadLetterQueue ? 0 : undefined,
    environment: options.environment,
  });
  // CDK makes the function depend on its role, which the reference to the role already orders
  // (cfn-lint W3005). Only that one is dropped, once synthesis has added every other dependency:
  // the role's policy, a VPC's NAT routes, and any a user of the construct adds.
  const cfnFunction = fn.node.defaultChild as CfnResource;
  const cfnRole = role.node.defaultChild as CfnResource;
  cfnFunction.addOverride(
    "DependsOn",
    Lazy.list({
      produce: () =>
        cfnFunction
          .obtainDependencies()
          // A dependency on a whole stack belongs to the stacks, not to DependsOn.
          .flatMap((dependency) =>
            dependency instanceof CfnElement && dependency !== cfnRole
              ? [dependency.logicalId]
              : [],
          )
          .sort(),
    }),
  );
  acknowledgeFunctionFindings(fn);
  return { fn, logGroup };
}

/** The findings every function of the construct accepts, with why. */
function acknowledgeFunctionFindings(fn: lambda.Function): void {
  acknowledge(fn, {
    // Both rules flag any runtime older than the newest the user's aws-cdk-lib knows, so a newer
    // aws-cdk-lib than this package was built with would fail the user's synthesis.
    ...Object.fromEntries(
      ["AwsSolutions-L1", "Serverless-LambdaLatestVersion"].map((id) => [
        id,
        `The function runs on ${FUNCTION_RUNTIME.name}, the runtime its bundle is built for (esbuild target ${BUNDLE_TARGET}) and tested on; a newer Node.js runtime comes with a release of this package that builds and tests for it, not with a newer aws-cdk-lib.`,
      ]),
    ),
    "Serverless-LambdaTracing":
      "Diagnostics come from structured logs and EMF metrics; X-Ray would add per-request cost and an IAM wildcard for no data the logs lack.",
  });
}

/** A VPC, its subnets and security groups, for a function that runs in one. */
export interface FunctionPlacement {
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly securityGroups: ec2.ISecurityGroup[];
}

/**
 * In a VPC, Lambda creates the function's network interfaces with the function's role (CDK adds
 * its managed policy only to roles it makes itself). The grant is in the role's default policy,
 * which the function depends on, so CreateFunction finds it. Returns the placement, for the
 * function's props.
 */
function withNetworkInterfaceGrant(
  placement: FunctionPlacement,
  role: iam.Role,
): FunctionPlacement {
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: "VpcNetworkInterfaces",
      actions: [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
      ],
      resources: ["*"],
    }),
  );
  acknowledge(role, {
    "AwsSolutions-IAM5[Resource::*]":
      "The network interfaces Lambda creates for a function in a VPC do not exist before it creates them, and the Describe actions take no resource: the actions of AWSLambdaVPCAccessExecutionRole, inline.",
  });
  return placement;
}

/**
 * Props that break a construct's rules, refused in its constructor as CDK's own constructs do: one
 * error naming the construct's path and every problem, before anything is synthesized.
 */
export class EcrAnywhereValidationError extends Error {
  override readonly name = "ValidationError";
  constructor(scope: IConstruct, problems: readonly string[]) {
    super(`${scope.node.path}: ${problems.join("; ")}`);
  }
}

/** The functions' `metricsInstance` setting, only when there is one. */
export function instanceEnvironment(metricsInstance: string | undefined): Record<string, string> {
  return metricsInstance === undefined ? {} : { [ENV.metricsInstance]: metricsInstance };
}

export function throwIfInvalid(scope: IConstruct, problems: readonly (string | undefined)[]): void {
  const found = problems.filter((problem) => problem !== undefined);
  if (found.length > 0) throw new EcrAnywhereValidationError(scope, found);
}

/** Accepts cdk-nag findings on a construct, each with the reason it is right for this design. */
export function acknowledge(scope: IConstruct, reasons: Readonly<Record<string, string>>): void {
  for (const [id, reason] of Object.entries(reasons))
    Validations.of(scope).acknowledge({ id, reason });
}
