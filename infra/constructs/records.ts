/**
 * Cluster records, layout 2 (docs/contract.md): two DynamoDB tables named from one records name N,
 * `<N>-webhook` (what the internet-facing webhook reads: token hashes, registries, grants; nothing
 * secret) and `<N>-refresher` (the refresher's kubeconfigs, sealed client-side with the record key,
 * and its state). Separate tables, so each function's role can be granted exactly one.
 */
import { RemovalPolicy, Stack } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import { Construct } from "constructs";
import { isRecordsName, recordTables } from "../../functions/core/contract.ts";
import { throwIfInvalid } from "./shared.ts";

export interface EcrAnywhereRecordsProps {
  /** The records name N: the tables are `<N>-webhook` and `<N>-refresher`. */
  readonly recordsName: string;
}

/** The two record tables. Stands alone: the webhook and the refresher are each given theirs. */
export class EcrAnywhereRecords extends Construct {
  readonly recordsName: string;
  /** The webhook's part of each record: read by the webhook, written by the CLI. */
  readonly webhookTable: dynamodb.Table;
  /** The refresher's part: read and written back by the refresher, written by the CLI. */
  readonly refresherTable: dynamodb.Table;

  constructor(scope: Construct, id: string, props: EcrAnywhereRecordsProps) {
    super(scope, id);
    throwIfInvalid(this, [
      isRecordsName(props.recordsName)
        ? undefined
        : `recordsName must be 1 to 200 of A-Z, a-z, 0-9, "_", "." and "-" (got "${props.recordsName}")`,
    ]);
    this.recordsName = props.recordsName;
    const twin = sameTablesInThisApp(this);
    throwIfInvalid(this, [
      twin === undefined
        ? undefined
        : `records name "${props.recordsName}" is already used by ${twin.node.path} in the same account and region: each instance needs its own records name, since its tables are named from it`,
    ]);
    const names = recordTables(props.recordsName);
    this.webhookTable = recordTable(this, "WebhookTable", names.webhook);
    this.refresherTable = recordTable(this, "RefresherTable", names.refresher);
  }
}

/**
 * Another records construct of this app whose tables would get the same names in the same account
 * and region: the second deploy would fail on them. Stacks without an environment count as one
 * account and region (the CLI's), stacks with different ones as apart.
 */
function sameTablesInThisApp(self: EcrAnywhereRecords): EcrAnywhereRecords | undefined {
  const here = Stack.of(self);
  return self.node.root.node
    .findAll()
    .find(
      (other): other is EcrAnywhereRecords =>
        other !== self &&
        other instanceof EcrAnywhereRecords &&
        other.recordsName === self.recordsName &&
        Stack.of(other).account === here.account &&
        Stack.of(other).region === here.region,
    );
}

function recordTable(scope: Construct, id: string, tableName: string): dynamodb.Table {
  return new dynamodb.Table(scope, id, {
    // Named, so the CLI finds it from the records name alone.
    tableName,
    partitionKey: { name: "clusterId", type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    // AWS-owned: the webhook's table holds nothing secret, and the refresher's one secret field is
    // sealed client-side with the record key. A customer-managed table key would let whoever may
    // use it through DynamoDB read everything, and cost a KMS call per cache miss.
    encryption: dynamodb.TableEncryption.DEFAULT,
    // Offboarded items go at the end of their recovery window.
    timeToLiveAttribute: "expiresAt",
    // A few KB per cluster: point-in-time recovery costs a fraction of a cent and undoes mistakes.
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    // Onboarded clusters' records outlive the stack: deleting it must not offboard the fleet.
    removalPolicy: RemovalPolicy.RETAIN,
  });
}
