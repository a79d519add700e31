/**
 * The webhook: its function behind a public function URL (auth NONE: kube-apiserver cannot sign
 * AWS requests; clusters authenticate with their token), the table where its execution
 * environments share ECR tokens, the principal that mints private tokens under each cluster's
 * session policy (the token broker, or the stack's pull role), and least-privilege IAM.
 */
import { Duration, RemovalPolicy, Stack, Token } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import type * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { BROKER_KEY_ITEM } from "../../functions/core/broker-key.ts";
import { ENV } from "../../functions/core/config.ts";
import { ECR } from "../../functions/core/ecr-kind.ts";
import { parseRegistryHost } from "../../functions/core/registries.ts";
import type {
  EcrRegistry,
  Partition,
  PolicyStatementJson,
} from "../../functions/core/registry-kind.ts";
import { TOKEN_SCOPING_MODES, type TokenScopingMode } from "../../functions/core/token-scoping.ts";
import { mintingStatements, parseAllowedRegistries } from "../../functions/core/webhook-role.ts";
import {
  ADMISSION_BUDGET_MS,
  acknowledge,
  ecrAnywhereFunction,
  instanceEnvironment,
  throwIfInvalid,
  WEBHOOK_TIMEOUT,
} from "./shared.ts";
import { EcrAnywhereTokenBroker } from "./token-broker.ts";

export interface EcrAnywhereWebhookProps
  extends Pick<lambda.FunctionOptions, "memorySize" | "reservedConcurrentExecutions"> {
  /**
   * Added as the `instance` dimension of the function's custom metrics (and the alarms on them),
   * so a second deployment in one account and region keeps its own. @default none: `service` only
   */
  readonly metricsInstance?: string | undefined;
  /**
   * Encrypts the token table; the webhook may use it only through DynamoDB, for that table. (It
   * also seals the refresher's kubeconfigs, which the webhook can never open.)
   */
  readonly recordKey: kms.IKey;
  /** The webhook's table of cluster records (`<records>-webhook`): read-only, and nothing else. */
  readonly recordTable: dynamodb.ITable;
  readonly labelPrefix: string;
  /** ECR hosts whose repositories tokens may pull from; none: the stack's own account and region. */
  readonly allowedRegistries?: readonly string[] | undefined;
  /** Roles the webhook may assume for clusters whose record names a `roleArn`. */
  readonly clusterRoleArns?: readonly string[] | undefined;
  /** Also grant what a first pull through a pull-through cache rule needs. */
  readonly pullThroughCache: boolean;
  /**
   * How tokens of clusters without a `roleArn` are scoped to their record: `federation`, sessions
   * of a token broker IAM user (12 h tokens); `role-session`, sessions of a pull role the webhook
   * assumes (1 h tokens, no IAM user). See docs/contract.md, "Token scoping". @default federation
   */
  readonly tokenScoping?: TokenScopingMode | undefined;
  /** How long a record is cached: the longest a revoked token keeps working (1 s to 1 hour). */
  readonly recordCacheTtl: Duration;
  readonly logRetention: logs.RetentionDays;
}

/**
 * The webhook: its function behind a public function URL, the table where its execution
 * environments share ECR tokens, and least-privilege IAM. Stands alone: give it the record key and
 * its record table.
 */
export class EcrAnywhereWebhook extends Construct {
  readonly function: lambda.Function;
  readonly functionUrl: lambda.FunctionUrl;
  readonly tokenTable: dynamodb.Table;
  readonly logGroup: logs.LogGroup;
  /** `federation` only: the broker user and its key's rotation function. */
  readonly tokenBroker?: EcrAnywhereTokenBroker;
  /** `role-session` only: the role the webhook assumes for clusters without a role. */
  readonly pullRole?: iam.Role;
  /**
   * The registry hosts tokens may pull from: `allowedRegistries`, or the stack's own registry when
   * unset (the stack output `AllowedRegistries`, which onboard checks `--registries` against).
   */
  readonly allowedRegistries: readonly string[];

  constructor(scope: Construct, id: string, props: EcrAnywhereWebhookProps) {
    super(scope, id);
    validateWebhookProps(this, props);
    this.tokenTable = new dynamodb.Table(this, "TokenStore", {
      partitionKey: { name: "pk", type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: props.recordKey,
      // Items go once their token has expired; what is in it is re-minted on demand.
      timeToLiveAttribute: "expiresAt",
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledge(this.tokenTable, {
      "AwsSolutions-DDB3":
        "A cache of tokens that expire within hours: nothing to recover to a point in time.",
    });
    const { fn, logGroup } = ecrAnywhereFunction(this, {
      name: "webhook",
      entry: "functions/webhook/handler.ts",
      description: "ecr-anywhere webhook: writes fresh ECR credentials into managed Secrets",
      timeout: WEBHOOK_TIMEOUT,
      memorySize: props.memorySize,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      logRetention: props.logRetention,
      environment: {
        [ENV.labelPrefix]: props.labelPrefix,
        [ENV.webhookRecordTable]: props.recordTable.tableName,
        [ENV.recordTtlSeconds]: String(props.recordCacheTtl.toSeconds()),
        [ENV.admissionBudgetMs]: String(ADMISSION_BUDGET_MS),
        [ENV.tokenTable]: this.tokenTable.tableName,
        [ENV.pullThroughCache]: String(props.pullThroughCache),
        ...instanceEnvironment(props.metricsInstance),
      },
    });
    this.function = fn;
    this.logGroup = logGroup;
    acknowledge(this.function, {
      "Serverless-LambdaDLQ":
        "The webhook is invoked synchronously through its function URL; the API server gets every failure as the answer.",
    });
    const scoped = this.grantRegistries(props);
    this.allowedRegistries = scoped.hosts;
    if ((props.tokenScoping ?? "federation") === "federation") {
      this.tokenBroker = new EcrAnywhereTokenBroker(this, "TokenBroker", {
        tokenTable: this.tokenTable,
        tableKey: props.recordKey,
        statements: scoped.statements,
        wildcardFindings: scoped.findings,
        logRetention: props.logRetention,
      });
      this.function.addEnvironment(ENV.tokenScoping, "federation");
      this.function.addEnvironment(ENV.brokerUser, this.tokenBroker.user.userName);
    } else {
      this.pullRole = this.newPullRole(scoped.statements, scoped.findings);
      this.function.addEnvironment(ENV.tokenScoping, "role-session");
      this.function.addEnvironment(ENV.pullRoleArn, this.pullRole.roleArn);
    }
    this.grantAssumeRole([
      ...(props.clusterRoleArns ?? []),
      ...(this.pullRole ? [this.pullRole.roleArn] : []),
    ]);
    this.grantRecordsAndTable(props);
    this.functionUrl = this.function.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
  }

  /**
   * The record key only as DynamoDB uses it for the token table: the calls must come through
   * DynamoDB (kms:ViaService) for that table (its encryption context). So the webhook can never
   * call KMS itself, and could not open a sealed kubeconfig even if it held one. DescribeKey
   * carries no encryption context, so it is bound to DynamoDB only.
   */
  private grantTokenTableKey(recordKey: kms.IKey): void {
    const viaDynamoDb = { "kms:ViaService": dynamodbViaService(Stack.of(this)) };
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "TokenTableKeyThroughDynamoDB",
        actions: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
        resources: [recordKey.keyArn],
        conditions: {
          StringEquals: {
            ...viaDynamoDb,
            "kms:EncryptionContext:aws:dynamodb:tableName": this.tokenTable.tableName,
          },
        },
      }),
    );
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "DescribeTokenTableKeyThroughDynamoDB",
        actions: ["kms:DescribeKey"],
        resources: [recordKey.keyArn],
        conditions: { StringEquals: viaDynamoDb },
      }),
    );
  }

  /**
   * The webhook's role keeps only the statements of kinds whose tokens reach public content alone
   * (ECR Public); every other kind's go to the principal that mints under session policies. Its
   * wildcard repositories are findings to acknowledge there.
   */
  private grantRegistries(props: EcrAnywhereWebhookProps): {
    statements: PolicyStatementJson[];
    findings: Record<string, string>;
    hosts: string[];
  } {
    const stack = Stack.of(this);
    // With no allowed registries, tokens pull from the stack's own; a list of only public.ecr.aws
    // grants no private pulls.
    const registries =
      props.allowedRegistries === undefined
        ? [ownRegistry(stack)]
        : parseAllowedRegistries(
            props.allowedRegistries,
            Token.isUnresolved(stack.region) ? undefined : stack.region,
          );

    const { webhook, scoped } = mintingStatements(registries, {
      pullThroughCache: props.pullThroughCache,
    });
    for (const statement of webhook)
      this.function.addToRolePolicy(iam.PolicyStatement.fromJson(statement));
    const findings = Object.fromEntries(
      (props.allowedRegistries === undefined
        ? [DEFAULT_REPOSITORIES_FINDING]
        : wildcardResources(scoped)
      ).map((arn) => [
        `AwsSolutions-IAM5[Resource::${arn}]`,
        "Tokens may pull any repository of an allowed registry at most; every token is minted under its cluster's session policy, which narrows this to the registries (or repositories) of its record.",
      ]),
    );
    return { statements: scoped, findings, hosts: registries.map((registry) => registry.host) };
  }

  /** role-session: a role only the webhook may assume, holding what tokens may ever do. */
  private newPullRole(
    statements: readonly PolicyStatementJson[],
    findings: Record<string, string>,
  ): iam.Role {
    const webhookRole = this.function.role;
    if (webhookRole === undefined) throw new Error("the webhook function has no role");
    const role = new iam.Role(this, "PullRole", {
      assumedBy: webhookRole,
      description:
        "ecr-anywhere pull role: assumed by the webhook under each cluster's session policy",
      maxSessionDuration: Duration.hours(1),
    });
    for (const statement of statements) role.addToPolicy(iam.PolicyStatement.fromJson(statement));
    acknowledge(role.node.findChild("DefaultPolicy"), {
      "AwsSolutions-IAM5[Resource::*]":
        'ecr:GetAuthorizationToken supports no resource-level permissions: AWS requires "*".',
      ...findings,
    });
    return role;
  }

  private grantAssumeRole(roleArns: readonly string[]): void {
    if (roleArns.length === 0) return;
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "AssumeClusterRoles",
        actions: ["sts:AssumeRole"],
        resources: [...roleArns],
      }),
    );
  }

  private grantRecordsAndTable(props: EcrAnywhereWebhookProps): void {
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "ReadClusterRecords",
        // Its own part of each record (GetItem), and the known ids once a stranger calls (a
        // keys-only Scan): nothing on the refresher's table, no writes.
        actions: ["dynamodb:GetItem", "dynamodb:Scan"],
        resources: [props.recordTable.tableArn],
      }),
    );
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "ShareTokens",
        // Read, lease and write items of the token table: no scans, no deletes. GetItem also
        // reads the broker's key.
        actions: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        resources: [this.tokenTable.tableArn],
      }),
    );
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "NeverWriteBrokerKey",
        effect: iam.Effect.DENY,
        // Only the rotation function writes the broker's key.
        actions: ["dynamodb:PutItem", "dynamodb:UpdateItem"],
        resources: [this.tokenTable.tableArn],
        conditions: { "ForAnyValue:StringEquals": { "dynamodb:LeadingKeys": [BROKER_KEY_ITEM] } },
      }),
    );
    this.grantTokenTableKey(props.recordKey);
    acknowledge(this.function.role ?? this.function, {
      "AwsSolutions-IAM5[Resource::*]":
        'ecr-public:GetAuthorizationToken with sts:GetServiceBearerToken, when public.ecr.aws is allowed, supports no resource-level permissions: AWS requires "*".',
    });
  }
}

/** What `kms:ViaService` says for calls DynamoDB makes in this stack's region. */
function dynamodbViaService(stack: Stack): string {
  return `dynamodb.${stack.region}.${stack.urlSuffix}`;
}

/** The stack's own private registry, in CloudFormation's terms. */
function ownRegistry(stack: Stack): EcrRegistry {
  return {
    host: `${stack.account}.dkr.ecr.${stack.region}.${stack.urlSuffix}`,
    kind: ECR.id,
    accountId: stack.account,
    region: stack.region,
    partition: stack.partition as Partition,
    fips: false,
    dualStack: false,
  };
}

/** Resources granted with a wildcard: each is a cdk-nag finding to acknowledge. */
function wildcardResources(statements: readonly PolicyStatementJson[]): string[] {
  const resources = statements.flatMap((statement) => [statement.Resource].flat());
  return [...new Set(resources.filter((resource) => resource !== "*" && resource.includes("*")))];
}

const DEFAULT_REPOSITORIES_FINDING =
  "arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/*";

function validateWebhookProps(scope: Construct, props: EcrAnywhereWebhookProps): void {
  const ttl = props.recordCacheTtl.toSeconds();
  const reserved = props.reservedConcurrentExecutions;
  throwIfInvalid(scope, [
    props.allowedRegistries === undefined || props.allowedRegistries.length > 0
      ? undefined
      : "allowedRegistries is empty, which would let tokens pull nothing: leave it unset for the stack's own registry, or list the registry hosts",
    ...(props.allowedRegistries ?? []).map((host) => {
      const parsed = parseRegistryHost(host);
      return parsed.ok ? undefined : `allowedRegistries: ${parsed.problem}`;
    }),
    ttl >= 1 && ttl <= 3600
      ? undefined
      : `recordCacheTtl must be from 1 second to 1 hour (got ${props.recordCacheTtl.toHumanString()})`,
    reserved === undefined || (Number.isInteger(reserved) && reserved >= 1)
      ? undefined
      : `reservedConcurrentExecutions must be a whole number >= 1 (got ${reserved})`,
    props.tokenScoping === undefined || TOKEN_SCOPING_MODES.includes(props.tokenScoping)
      ? undefined
      : `tokenScoping must be ${TOKEN_SCOPING_MODES.join(" or ")} (got ${String(props.tokenScoping)})`,
  ]);
}
