/**
 * The token broker: the IAM user whose federated sessions mint the tokens of clusters without a
 * role of their own, each under its own record's session policy (docs/contract.md, "Token
 * scoping"), and the function that keeps its access key: created with the stack (a CloudFormation
 * custom resource), rotated on a schedule, removed with the stack. The key never appears in the
 * template, the custom resource's answer or a log: it goes from IAM straight into one item of the
 * webhook's token table.
 */
import { CustomResource, Duration, Stack } from "aws-cdk-lib";
import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { BROKER_KEY_ITEM } from "../../functions/core/broker-key.ts";
import { ENV } from "../../functions/core/config.ts";
import type { PolicyStatementJson } from "../../functions/core/registry-kind.ts";
import { FEDERATED_USER_PREFIX } from "../../functions/core/token-scoping.ts";
import { acknowledge, ecrAnywhereFunction } from "./shared.ts";

export interface EcrAnywhereTokenBrokerProps {
  /** The webhook's token table: the key is kept in its item `ecr-anywhere/broker-key`. */
  readonly tokenTable: dynamodb.ITable;
  /** The table's encryption key. */
  readonly tableKey: kms.IKey;
  /**
   * What tokens may ever do: minting and pulling from the stack's allowed private registries (a
   * session policy can only narrow it).
   */
  readonly statements: readonly PolicyStatementJson[];
  /** Findings on `statements`' wildcard resources, acknowledged with their reasons. */
  readonly wildcardFindings?: Readonly<Record<string, string>>;
  /** How often the rotation function runs (it replaces the key once it is 30 days old). @default 1 day */
  readonly rotationInterval?: Duration;
  readonly logRetention: logs.RetentionDays;
}

/**
 * An IAM user with no password (no console), no groups and one inline policy, and its key's
 * rotation function. Stands alone: give it the table and what tokens may do.
 */
export class EcrAnywhereTokenBroker extends Construct {
  readonly user: iam.User;
  readonly rotation: lambda.Function;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: EcrAnywhereTokenBrokerProps) {
    super(scope, id);
    this.user = new iam.User(this, "User");
    this.grantUser(props);
    const { fn, logGroup } = ecrAnywhereFunction(this, {
      name: "broker key rotation",
      entry: "functions/broker-rotation/handler.ts",
      description:
        "ecr-anywhere token broker: creates, rotates and removes the broker's access key",
      // IAM may need a minute or two to see a user and grants created in the same deployment.
      timeout: Duration.minutes(5),
      logRetention: props.logRetention,
      environment: {
        [ENV.tokenTable]: props.tokenTable.tableName,
        [ENV.brokerUser]: this.user.userName,
      },
    });
    this.rotation = fn;
    this.logGroup = logGroup;
    this.grantRotation(props);
    this.schedule(props.rotationInterval ?? Duration.days(1));
    // The first key is made while the stack deploys, and every key is removed before the user is
    // (IAM refuses to delete a user that has keys): the resource depends on the user by its name.
    new CustomResource(this, "Key", {
      serviceToken: fn.functionArn,
      resourceType: "Custom::EcrAnywhereBrokerKey",
      properties: { UserName: this.user.userName },
      serviceTimeout: Duration.minutes(6),
    });
  }

  private grantUser(props: EcrAnywhereTokenBrokerProps): void {
    const stack = Stack.of(this);
    const federatedUsers = stack.formatArn({
      service: "sts",
      region: "",
      resource: "federated-user",
      resourceName: `${FEDERATED_USER_PREFIX}*`,
    });
    for (const statement of props.statements)
      this.user.addToPolicy(iam.PolicyStatement.fromJson(statement));
    this.user.addToPolicy(
      new iam.PolicyStatement({
        sid: "FederateClusterSessions",
        // The webhook asks for one session per cluster, named ecr-anywhere-<cluster-id>; the
        // session policy it sends can only narrow the statements above.
        actions: ["sts:GetFederationToken"],
        resources: [federatedUsers],
      }),
    );
    const policy = this.user.node.findChild("DefaultPolicy");
    acknowledge(policy, {
      "AwsSolutions-IAM5[Resource::*]":
        'ecr:GetAuthorizationToken supports no resource-level permissions: AWS requires "*".',
      [`AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sts::<AWS::AccountId>:federated-user/${FEDERATED_USER_PREFIX}*]`]:
        "Federated users are named per cluster when a token is minted: the grant covers exactly the project's name prefix.",
      ...props.wildcardFindings,
    });
  }

  /** The user's keys, and the one table item: nothing else. */
  private grantRotation(props: EcrAnywhereTokenBrokerProps): void {
    const stack = Stack.of(this);
    this.rotation.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "RotateBrokerKeys",
        actions: ["iam:ListAccessKeys", "iam:CreateAccessKey", "iam:DeleteAccessKey"],
        resources: [this.user.userArn],
      }),
    );
    this.rotation.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "KeepBrokerKey",
        // Reads which key is current (planning), writes the new one; only the key's own item.
        actions: ["dynamodb:GetItem", "dynamodb:PutItem"],
        resources: [props.tokenTable.tableArn],
        conditions: { "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": [BROKER_KEY_ITEM] } },
      }),
    );
    this.rotation.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "EncryptBrokerKey",
        // The table is encrypted with the record key; only through DynamoDB, never directly.
        actions: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
        resources: [props.tableKey.keyArn],
        conditions: {
          StringEquals: { "kms:ViaService": `dynamodb.${stack.region}.${stack.urlSuffix}` },
        },
      }),
    );
    acknowledge(this.rotation, {
      "Serverless-LambdaDLQ":
        "A failed run is retried by the next daily run and raises the rotation alarm; a dead-letter queue would keep only the schedule's empty event.",
    });
  }

  private schedule(interval: Duration): void {
    const rule = new events.Rule(this, "Schedule", {
      description: "Rotates the ecr-anywhere token broker's access key when due",
      schedule: events.Schedule.rate(interval),
    });
    rule.addTarget(new targets.LambdaFunction(this.rotation, { retryAttempts: 2 }));
    acknowledge(rule, {
      "Serverless-EventBusDLQ":
        "An undelivered run carries no data (a scheduled event) and the next day's run does the same work; a missed rotation leaves the current key working.",
    });
  }
}
