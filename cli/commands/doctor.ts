/**
 * `ecr-anywhere doctor`: after deploy, and any time, read-only. Reads the stack, calls the deployed
 * webhook's health path plainly and with an Authorization header (does header mode work?), and
 * reports the alarms' states, the shared token table (described, never read) and the number of
 * cluster records (counted, never read). Exit 1 on any problem.
 */
import { Command } from "@commander-js/extra-typings";
import { recordTables } from "../../functions/core/contract.ts";
import { failed } from "../adapters/aws-account.ts";
import {
  alarmsFinding,
  DEPLOY_COMMAND,
  type Finding,
  healthFinding,
  passed,
  problem,
  tokenTableFinding,
} from "../core/findings.ts";
import { parseSeconds } from "../core/inputs.ts";
import type { Factory } from "../factory.ts";
import { checked } from "../flags.ts";
import { printFindings } from "./findings-output.ts";

export interface DoctorOptions {
  readonly stack: string;
  readonly timeoutSeconds: number;
}

/** The token table's logical ID, whatever the construct's id in the app: `…WebhookTokenStore<hash>`. */
const TOKEN_TABLE = /WebhookTokenStore[0-9A-F]{8}$/;

export function newDoctorCommand(factory: () => Factory) {
  return new Command("doctor")
    .description(
      "after deploy, read-only: the stack, the webhook's health (does the Authorization header reach it?), alarms, the token table, the number of cluster records; exit 1 on any problem",
    )
    .option("--stack <name>", "the deployed stack", "EcrAnywhere")
    .option("--timeout <seconds>", "for each call to the webhook", checked(parseSeconds), 10)
    .action(async (flags) => {
      await runDoctor({ stack: flags.stack, timeoutSeconds: flags.timeout }, factory());
    });
}

export async function runDoctor(options: DoctorOptions, factory: Factory): Promise<void> {
  const account = factory.awsAccount();
  const findings: Finding[] = [];
  const stack = await account.stack(options.stack);
  const check = `stack ${options.stack}`;
  const redeploy = `deploy it with ${DEPLOY_COMMAND}, or pass --stack and --region of the stack you deployed`;
  if (failed(stack) || stack === undefined) {
    const where = await account.location();
    findings.push(
      problem(
        check,
        failed(stack)
          ? `cannot read it in ${where}: ${stack.failed}`
          : `does not exist in ${where}`,
        redeploy,
      ),
    );
    return printFindings(factory, findings);
  }
  const webhookUrl = stack.outputs.WebhookUrl;
  const records = stack.outputs.ClusterRecords;
  const settled = /_COMPLETE$/.test(stack.status) && !/ROLLBACK|DELETE/.test(stack.status);
  findings.push(
    settled && webhookUrl && records
      ? passed(check, `${stack.status}; webhook ${webhookUrl}`)
      : problem(
          check,
          `${stack.status}${webhookUrl && records ? "" : ", without the WebhookUrl and ClusterRecords outputs"}`,
          redeploy,
        ),
  );
  if (webhookUrl) {
    const timeoutMs = options.timeoutSeconds * 1000;
    for (const form of ["path", "header"] as const)
      findings.push(healthFinding(form, await factory.webhookHealth(webhookUrl, form, timeoutMs)));
  }
  findings.push(...(await resourceFindings(options.stack, factory)));
  let clusters: number | undefined;
  if (records) {
    const table = recordTables(records).webhook;
    const count = await account.countLiveRecords(table);
    if (failed(count))
      findings.push(
        problem(
          "cluster records",
          `cannot count ${table}: ${count.failed}`,
          "allow dynamodb:Scan on it (see docs/onboard.md, the operator's policy)",
        ),
      );
    else {
      clusters = count;
      findings.push(
        passed(
          "cluster records",
          `${count} cluster(s) in ${table}${count === 0 ? ": onboard one (docs/onboard.md)" : ""}`,
        ),
      );
    }
  }
  printFindings(factory, findings, { stack: options.stack, webhookUrl, clusters });
}

/** The alarms' states and the token table's, from the stack's own resources. */
async function resourceFindings(stackName: string, factory: Factory): Promise<Finding[]> {
  const account = factory.awsAccount();
  const resources = await account.stackResources(stackName);
  if (failed(resources))
    return [
      problem(
        "stack resources",
        resources.failed,
        "allow cloudformation:ListStackResources (see docs/onboard.md, the operator's policy)",
      ),
    ];
  const states = await account.stackAlarms(stackName);
  const tokenTable = resources.find(
    (resource) => resource.type === "AWS::DynamoDB::Table" && TOKEN_TABLE.test(resource.logicalId),
  )?.physicalId;
  const table = tokenTable === undefined ? undefined : await account.table(tokenTable);
  return [
    failed(states)
      ? problem("alarms", states.failed, "allow cloudwatch:DescribeAlarms (see docs/onboard.md)")
      : alarmsFinding(stackName, states),
    table !== undefined && failed(table)
      ? problem(
          "shared token table",
          table.failed,
          "allow dynamodb:DescribeTable on it (see docs/onboard.md)",
        )
      : tokenTableFinding(tokenTable, table),
  ];
}
