/**
 * `ecr-anywhere preflight`: before `cdk deploy`, read-only. Are there credentials, and a region?
 * Is CDK bootstrapped there? Can the account's Lambda concurrency give what the settings ask? Do
 * DynamoDB and KMS answer, and are the record table names free? Each problem with its fix; exit 1
 * when there is one.
 */
import { Command } from "@commander-js/extra-typings";
import { markConcurrencyFor } from "../../functions/core/concurrency.ts";
import { recordTables } from "../../functions/core/contract.ts";
import { type AwsAccount, failed } from "../adapters/aws-account.ts";
import {
  bootstrapFinding,
  concurrencyFinding,
  type Finding,
  passed,
  problem,
  recordTableFinding,
  targetStackFinding,
} from "../core/findings.ts";
import { wholeNumberFrom } from "../core/inputs.ts";
import type { Factory } from "../factory.ts";
import { checked } from "../flags.ts";
import { printFindings } from "./findings-output.ts";

export interface PreflightOptions {
  readonly stack: string;
  readonly toolkitStack: string;
  readonly reservedConcurrency: number | undefined;
  readonly markConcurrency: number | undefined;
  readonly fanoutConcurrency: number | undefined;
}

export function newPreflightCommand(factory: () => Factory) {
  return new Command("preflight")
    .description(
      "before cdk deploy, read-only: credentials and region, CDK bootstrap, Lambda concurrency for the chosen settings, DynamoDB and KMS; exit 1 on any problem",
    )
    .option(
      "--stack <name>",
      "the stack to deploy (the ecr-anywhere:stackName context)",
      "EcrAnywhere",
    )
    .option(
      "--toolkit-stack-name <name>",
      "the CDK bootstrap stack (cdk bootstrap's --toolkit-stack-name)",
      "CDKToolkit",
    )
    .option(
      "--webhook-reserved-concurrency <n>",
      "the webhook's reserved concurrency you will deploy with (the ecr-anywhere:webhookReservedConcurrency context; default none)",
      checked(wholeNumberFrom(1, 1000)),
    )
    .option(
      "--refresher-mark-concurrency <n>",
      "the ecr-anywhere:refresherMarkConcurrency context (default 10, or half a smaller reservation)",
      checked(wholeNumberFrom(1, 500)),
    )
    .option(
      "--fanout-concurrency <n>",
      "fan-out mode's workers at once (the ecr-anywhere:fanoutConcurrency context; default inline mode)",
      checked(wholeNumberFrom(2, 1000)),
    )
    .action(async (flags) => {
      await runPreflight(
        {
          stack: flags.stack,
          toolkitStack: flags.toolkitStackName,
          reservedConcurrency: flags.webhookReservedConcurrency,
          markConcurrency: flags.refresherMarkConcurrency,
          fanoutConcurrency: flags.fanoutConcurrency,
        },
        factory(),
      );
    });
}

export async function runPreflight(options: PreflightOptions, factory: Factory): Promise<void> {
  const account = factory.awsAccount();
  const findings: Finding[] = [];
  const identity = await account.callerIdentity();
  if (failed(identity)) {
    findings.push(
      problem(
        "credentials and region",
        identity.failed,
        "set AWS_PROFILE (or pass --profile) and a region (--region, AWS_REGION or the profile's)",
      ),
    );
    // Nothing else can be read without them.
    return printFindings(factory, findings);
  }
  findings.push(passed("credentials and region", `${identity.arn} in ${identity.region}`));
  const [toolkit, concurrency, stack, kms] = await Promise.all([
    account.stack(options.toolkitStack),
    account.lambdaConcurrency(),
    account.stack(options.stack),
    account.kmsReachable(),
  ]);
  findings.push(bootstrapRead(options.toolkitStack, identity, toolkit));
  const target = failed(stack)
    ? {
        finding: problem(
          `stack ${options.stack}`,
          `cannot read it: ${stack.failed}`,
          "allow cloudformation:DescribeStacks (see docs/deploy.md, the deployer's policy)",
        ),
        exists: false,
      }
    : targetStackFinding(options.stack, stack?.status);
  findings.push(target.finding);
  const stackExists = target.exists;
  findings.push(
    failed(concurrency)
      ? problem(
          "Lambda concurrency",
          concurrency.failed,
          "allow lambda:GetAccountSettings (see docs/deploy.md)",
        )
      : concurrencyFinding(concurrency, {
          reserved: options.reservedConcurrency,
          markConcurrency: markConcurrencyFor(options.reservedConcurrency, options.markConcurrency),
          fanoutConcurrency: options.fanoutConcurrency,
          stackExists,
        }),
  );
  findings.push(
    failed(kms)
      ? problem(
          "KMS",
          kms.failed,
          "allow kms:ListAliases, and check that KMS is reachable from here",
        )
      : passed("KMS", "answers"),
  );
  for (const table of Object.values(recordTables(factory.records))) {
    const state = await account.table(table);
    findings.push(
      failed(state)
        ? problem(
            `DynamoDB table ${table}`,
            state.failed,
            "allow dynamodb:DescribeTable on the record tables (see docs/deploy.md)",
          )
        : recordTableFinding({ table, status: state?.status, stackExists }),
    );
  }
  printFindings(factory, findings);
}

function bootstrapRead(
  toolkitStack: string,
  identity: { readonly account: string; readonly region: string },
  toolkit: Awaited<ReturnType<AwsAccount["stack"]>>,
): Finding {
  return failed(toolkit)
    ? problem(
        "CDK bootstrap",
        `cannot read stack ${toolkitStack}: ${toolkit.failed}`,
        "allow cloudformation:DescribeStacks (see docs/deploy.md, the deployer's policy)",
      )
    : bootstrapFinding({
        toolkitStack,
        account: identity.account,
        region: identity.region,
        stack: toolkit,
      });
}
