/**
 * What `preflight` and `doctor` read from an AWS account, read-only: who the credentials are,
 * the CDK bootstrap stack, Lambda's account concurrency, whether tables and KMS answer, a stack's
 * resources, alarm states, and how many cluster records there are (a count, never an item). Every
 * client gets `--region`/`--profile`. Each failure is returned as its message, for a finding.
 */
import {
  CloudFormationClient,
  DescribeStacksCommand,
  paginateListStackResources,
} from "@aws-sdk/client-cloudformation";
import { CloudWatchClient, paginateDescribeAlarms } from "@aws-sdk/client-cloudwatch";
import {
  DescribeTableCommand,
  DynamoDBClient,
  paginateScan,
  ResourceNotFoundException,
} from "@aws-sdk/client-dynamodb";
import { KMSClient, ListAliasesCommand } from "@aws-sdk/client-kms";
import { GetAccountSettingsCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { type AwsClientConfig, awsLocation, awsMessage } from "./aws.ts";

/** A read that failed, with the SDK's message. */
export interface Failed {
  readonly failed: string;
}

export type Read<T> = T | Failed;

export function failed<T>(read: Read<T>): read is Failed {
  return typeof read === "object" && read !== null && "failed" in read;
}

async function attempt<T>(read: () => Promise<T>): Promise<Read<T>> {
  try {
    return await read();
  } catch (error) {
    return { failed: awsMessage(error) };
  }
}

export interface CallerIdentity {
  readonly account: string;
  readonly arn: string;
  readonly region: string;
}

export interface StackState {
  readonly status: string;
  readonly outputs: Readonly<Record<string, string>>;
}

export interface AccountConcurrency {
  readonly limit: number;
  readonly unreserved: number;
}

export interface TableState {
  readonly status: string;
  /** DynamoDB's own count, refreshed about every six hours. */
  readonly approximateItems: number | undefined;
  readonly encrypted: boolean;
}

export interface StackResource {
  readonly type: string;
  readonly logicalId: string;
  readonly physicalId: string;
}

export interface AlarmState {
  readonly name: string;
  readonly state: string;
}

export class AwsAccount {
  readonly #aws: AwsClientConfig;

  constructor(aws: AwsClientConfig = {}) {
    this.#aws = aws;
  }

  /** Runs one call with a client made for it, and destroys the client after. */
  async #with<C extends { destroy(): void }, T>(
    Client: new (config: AwsClientConfig) => C,
    use: (client: C) => Promise<T>,
  ): Promise<Read<T>> {
    const client = new Client(this.#aws);
    try {
      return await attempt(() => use(client));
    } finally {
      client.destroy();
    }
  }

  /** The region (and profile) every call here goes to, for messages: no call is made. */
  async location(): Promise<string> {
    const sts = new STSClient(this.#aws);
    try {
      return await awsLocation(sts, this.#aws);
    } finally {
      sts.destroy();
    }
  }

  callerIdentity(): Promise<Read<CallerIdentity>> {
    return this.#with(STSClient, async (sts) => {
      const identity = await sts.send(new GetCallerIdentityCommand({}));
      return {
        account: identity.Account ?? "",
        arn: identity.Arn ?? "",
        region: await sts.config.region(),
      };
    });
  }

  /** The stack's status and outputs; undefined when there is no such stack. */
  stack(name: string): Promise<Read<StackState | undefined>> {
    return this.#with(CloudFormationClient, async (cloudFormation) => {
      try {
        const { Stacks } = await cloudFormation.send(
          new DescribeStacksCommand({ StackName: name }),
        );
        const stack = Stacks?.[0];
        if (!stack) return undefined;
        return {
          status: stack.StackStatus ?? "UNKNOWN",
          outputs: Object.fromEntries(
            (stack.Outputs ?? []).map((output) => [
              output.OutputKey ?? "",
              output.OutputValue ?? "",
            ]),
          ),
        };
      } catch (error) {
        // CloudFormation says a missing stack with a ValidationError.
        if (/does not exist/.test((error as Error).message)) return undefined;
        throw error;
      }
    });
  }

  stackResources(name: string): Promise<Read<StackResource[]>> {
    return this.#with(CloudFormationClient, async (cloudFormation) => {
      const resources: StackResource[] = [];
      for await (const page of paginateListStackResources(
        { client: cloudFormation },
        { StackName: name },
      ))
        for (const resource of page.StackResourceSummaries ?? [])
          resources.push({
            type: resource.ResourceType ?? "",
            logicalId: resource.LogicalResourceId ?? "",
            physicalId: resource.PhysicalResourceId ?? "",
          });
      return resources;
    });
  }

  lambdaConcurrency(): Promise<Read<AccountConcurrency>> {
    return this.#with(LambdaClient, async (lambda) => {
      const { AccountLimit } = await lambda.send(new GetAccountSettingsCommand({}));
      return {
        limit: AccountLimit?.ConcurrentExecutions ?? 0,
        unreserved: AccountLimit?.UnreservedConcurrentExecutions ?? 0,
      };
    });
  }

  /** The table's state; undefined when there is no such table. */
  table(name: string): Promise<Read<TableState | undefined>> {
    return this.#with(DynamoDBClient, async (dynamodb) => {
      try {
        const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: name }));
        return {
          status: Table?.TableStatus ?? "UNKNOWN",
          approximateItems: Table?.ItemCount,
          encrypted: Table?.SSEDescription?.Status === "ENABLED",
        };
      } catch (error) {
        if (error instanceof ResourceNotFoundException) return undefined;
        throw error;
      }
    });
  }

  /** KMS answers these credentials (one page of one alias: a read of names only). */
  kmsReachable(): Promise<Read<true>> {
    return this.#with(KMSClient, async (kms) => {
      await kms.send(new ListAliasesCommand({ Limit: 1 }));
      return true as const;
    });
  }

  /**
   * The stack's alarms and their states. CloudFormation names an alarm the template leaves unnamed
   * (as the construct does) `<stack>-<logical id>-<suffix>`; a logical ID and the suffix have no
   * hyphen, so another stack whose name starts the same (`<stack>-prod`) is not matched.
   */
  stackAlarms(stackName: string): Promise<Read<AlarmState[]>> {
    // Stack names are letters, digits and hyphens: nothing a regular expression reads specially.
    const generated = new RegExp(`^${stackName}-[A-Za-z0-9]+-[A-Za-z0-9]+$`);
    return this.#with(CloudWatchClient, async (cloudWatch) => {
      const states: AlarmState[] = [];
      for await (const page of paginateDescribeAlarms(
        { client: cloudWatch },
        { AlarmNamePrefix: `${stackName}-`, AlarmTypes: ["MetricAlarm", "CompositeAlarm"] },
      ))
        for (const alarm of [...(page.MetricAlarms ?? []), ...(page.CompositeAlarms ?? [])])
          if (generated.test(alarm.AlarmName ?? ""))
            states.push({ name: alarm.AlarmName ?? "", state: alarm.StateValue ?? "UNKNOWN" });
      return states;
    });
  }

  /**
   * Live cluster records, exactly: a `Select: COUNT` scan of the webhook's table returns a number,
   * never an item, and skips records offboarded within their recovery window.
   */
  countLiveRecords(table: string): Promise<Read<number>> {
    return this.#with(DynamoDBClient, async (dynamodb) => {
      let count = 0;
      for await (const page of paginateScan(
        { client: dynamodb },
        {
          TableName: table,
          Select: "COUNT",
          FilterExpression: "attribute_not_exists(deletedAt)",
        },
      ))
        count += page.Count ?? 0;
      return count;
    });
  }
}
