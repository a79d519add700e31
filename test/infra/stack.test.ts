/** The CDK construct and stack: resources, least-privilege policies, security checks, lint. */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { propsFromContext } from "../../infra/config.ts";
import type { EcrAnywhereProps } from "../../infra/ecr-anywhere.ts";
import { addSecurityChecks } from "../../infra/nag.ts";
import { EcrAnywhereStack } from "../../infra/stack.ts";

const run = promisify(execFile);
const repo = join(import.meta.dirname, "../..");
const ROLE = "arn:aws:iam::123456789012:role/ecr-pull-gke-prod";
const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const WEST = "210987654321.dkr.ecr.eu-west-1.amazonaws.com";

function synthesize(props: EcrAnywhereProps = {}) {
  const app = new App();
  const stack = new EcrAnywhereStack(app, "Test", { ecrAnywhere: props });
  addSecurityChecks(app);
  app.synth(); // throws when cdk-nag has an unacknowledged finding
  return Template.fromStack(stack);
}

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

function statementsOf(template: Template, rolePrefix: string): Statement[] {
  return policyStatements(template, `EcrAnywhere${rolePrefix}Role`);
}

/** The token broker user's policy: what every private token may do at most. */
const BROKER_USER = "EcrAnywhereWebhookTokenBrokerUser";

function policyStatements(template: Template, idPrefix: string): Statement[] {
  const policies = template.findResources("AWS::IAM::Policy");
  return Object.entries(policies)
    .filter(([id]) => id.startsWith(idPrefix))
    .flatMap(
      ([, policy]) =>
        (policy as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties
          .PolicyDocument.Statement,
    );
}

const actions = (statement: Statement) => [statement.Action].flat();
/** The logical ID of a resource of the EcrAnywhere construct whose path ends in `name`. */
const tableId = (name: string) =>
  Object.keys(template.toJSON().Resources).find((id) =>
    new RegExp(`^EcrAnywhere${name}[0-9A-F]{8}$`).test(id),
  ) ?? `no ${name}`;
const keyId = () => tableId("ClusterRecordKey");
const resources = (statement: Statement) => [statement.Resource].flat();

let template: Template;
beforeAll(() => {
  template = synthesize({
    allowedRegistries: [EAST, WEST],
    clusterRoleArns: [ROLE],
    alarmEmail: "oncall@example.com",
  });
});

describe("functions", () => {
  it("deploys both functions on nodejs24.x, arm64, with timeouts that fit the webhook's 10 s admission", () => {
    // The webhook, the refresher, and the token broker's key rotation.
    template.resourceCountIs("AWS::Lambda::Function", 3);
    template.hasResourceProperties("AWS::Lambda::Function", {
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      Handler: "index.handler",
      Timeout: 10,
      // No reservation by default: a fresh account cannot spare one (Lambda keeps 100 unreserved).
      ReservedConcurrentExecutions: Match.absent(),
      Environment: {
        Variables: Match.objectLike({
          ECR_ANYWHERE_ADMISSION_BUDGET_MS: "8000",
          ECR_ANYWHERE_RECORD_TTL_SECONDS: "60",
        }),
      },
    });
    template.hasResourceProperties("AWS::Lambda::Function", {
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      Timeout: 600,
      DeadLetterConfig: { TargetArn: Match.anyValue() },
      Environment: {
        // Its own default of 10, not derived from a reservation there is none of: 9 for the
        // scheduled run, 1 for one-cluster checks.
        Variables: Match.objectLike({
          ECR_ANYWHERE_REFRESH_BEFORE_SECONDS: "21600",
          ECR_ANYWHERE_MARK_CONCURRENCY: "9",
          ECR_ANYWHERE_CHECK_MARK_CONCURRENCY: "1",
        }),
      },
    });
    template.allResourcesProperties("AWS::Logs::LogGroup", { RetentionInDays: 30 });
  });

  it("reserves the webhook's concurrency only when asked, and keeps marks to half of a reservation", () => {
    const webhookOf = (t: Template) =>
      Object.values(t.findResources("AWS::Lambda::Function")).find(
        (fn) => (fn as { Properties: { Timeout: number } }).Properties.Timeout === 10,
      ) as { Properties: { ReservedConcurrentExecutions?: number } };
    // The refresher's budget, as the scheduled run's share + the one-cluster check's.
    const marksOf = (t: Template) =>
      Object.values(t.findResources("AWS::Lambda::Function"))
        .map(
          (fn) =>
            (fn as { Properties: { Environment?: { Variables?: Record<string, string> } } })
              .Properties.Environment?.Variables,
        )
        .filter((variables) => variables?.ECR_ANYWHERE_MARK_CONCURRENCY !== undefined)
        .map(
          (variables) =>
            `${variables?.ECR_ANYWHERE_MARK_CONCURRENCY}+${variables?.ECR_ANYWHERE_CHECK_MARK_CONCURRENCY}`,
        )[0];
    const reserved = synthesize({ webhookReservedConcurrency: 50 });
    expect(webhookOf(reserved).Properties.ReservedConcurrentExecutions).toBe(50);
    expect(marksOf(reserved)).toBe("9+1");
    // A small reservation lowers the default to half of it; an explicit setting is kept.
    expect(marksOf(synthesize({ webhookReservedConcurrency: 8 }))).toBe("3+1");
    expect(marksOf(synthesize({ refresherMarkConcurrency: 40 }))).toBe("39+1");
    expect(() =>
      synthesize({ webhookReservedConcurrency: 20, refresherMarkConcurrency: 11 }),
    ).toThrow(
      /refresherMarkConcurrency \(11\) may be at most half of webhookReservedConcurrency \(20\)/,
    );
    expect(() => synthesize({ refresherMarkConcurrency: 0 })).toThrow(
      /refresherMarkConcurrency must be a whole number from 1 to 500/,
    );
  }, 120_000); // three synthesized stacks, each bundling the functions

  it("exposes the webhook through a function URL with auth NONE and both permissions Lambda requires", () => {
    template.hasResourceProperties("AWS::Lambda::Url", { AuthType: "NONE" });
    template.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunctionUrl",
      Principal: "*",
      FunctionUrlAuthType: "NONE",
    });
    template.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      Principal: "*",
      InvokedViaFunctionUrl: true,
    });
    template.hasOutput("WebhookUrl", {
      Value: { "Fn::GetAtt": [Match.stringLikeRegexp("WebhookFunctionUrl"), "FunctionUrl"] },
    });
    template.hasOutput("AlarmTopicArn", {});
    template.hasOutput("ClusterRecords", { Value: "ecr-anywhere-clusters" });
  });

  it("gives the CLI the allowed registries and the refresher to check with", () => {
    template.hasOutput("AllowedRegistries", { Value: `${EAST},${WEST}` });
    template.hasOutput("RefresherFunctionName", {
      Value: { Ref: Match.stringLikeRegexp("^EcrAnywhereRefresher") },
    });
    // Unset: the stack's own registry, in whatever account and region it is deployed to.
    const own = JSON.stringify(synthesize().toJSON().Outputs.AllowedRegistries.Value);
    expect(own).toContain('{"Ref":"AWS::AccountId"},".dkr.ecr.",{"Ref":"AWS::Region"}');
  }, 120_000);
});

describe("least-privilege IAM", () => {
  it("lets the webhook assume listed roles, read records and share tokens, and nothing else: it cannot mint a private token itself", () => {
    const statements = statementsOf(template, "Webhook");
    const granted = [...new Set(statements.flatMap(actions))].sort();
    expect(granted).toEqual(
      [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Scan",
        "dynamodb:UpdateItem",
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sts:AssumeRole",
      ].sort(),
    );
    // Private tokens are the broker's: the most any session policy can leave them.
    const pull = policyStatements(template, BROKER_USER).find((statement) =>
      actions(statement).includes("ecr:BatchGetImage"),
    );
    expect(resources(pull as Statement).sort()).toEqual([
      "arn:aws:ecr:eu-west-1:210987654321:repository/*",
      "arn:aws:ecr:us-east-1:123456789012:repository/*",
    ]);
    expect(
      resources(
        statements.find((statement) => actions(statement).includes("sts:AssumeRole")) as Statement,
      ),
    ).toEqual([ROLE]);
    // Its record table: read and list, on that table alone; never the refresher's.
    const read = statements.find((statement) =>
      actions(statement).includes("dynamodb:Scan"),
    ) as Statement;
    expect(actions(read).sort()).toEqual(["dynamodb:GetItem", "dynamodb:Scan"]);
    expect(read.Resource).toEqual({ "Fn::GetAtt": [tableId("RecordsWebhookTable"), "Arn"] });
    expect(JSON.stringify(statements)).not.toContain("RefresherTable");
    // The token table only, encrypted with the records key, and named to the webhook alone.
    const share = statements.find((statement) =>
      actions(statement).includes("dynamodb:PutItem"),
    ) as Statement;
    expect(JSON.stringify(share.Resource)).toMatch(/TokenStore[A-Z0-9]+", *"Arn"/);
    template.hasResourceProperties("AWS::DynamoDB::Table", {
      BillingMode: "PAY_PER_REQUEST",
      SSESpecification: { SSEEnabled: true, SSEType: "KMS" },
      TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
    });
    template.hasResourceProperties("AWS::Lambda::Function", {
      Environment: { Variables: Match.objectLike({ ECR_ANYWHERE_TOKEN_TABLE: Match.anyValue() }) },
    });
    expect(
      statementsOf(template, "Refresher").some((statement) =>
        JSON.stringify(statement.Resource).match(/TokenStore|WebhookTable/),
      ),
    ).toBe(false);
  });

  it("lets the webhook use the record key only through DynamoDB, for the token table", () => {
    const statements = statementsOf(template, "Webhook");
    const kmsStatements = statements.filter((statement) =>
      actions(statement).some((action) => action.startsWith("kms:")),
    );
    expect(kmsStatements.length).toBeGreaterThan(0);
    const viaDynamoDb = {
      "Fn::Join": ["", ["dynamodb.", { Ref: "AWS::Region" }, ".", { Ref: "AWS::URLSuffix" }]],
    };
    for (const statement of kmsStatements) {
      expect(statement.Resource).toEqual({ "Fn::GetAtt": [keyId(), "Arn"] });
      const conditions = (statement.Condition as { StringEquals: Record<string, unknown> })
        .StringEquals;
      expect(conditions["kms:ViaService"]).toEqual(viaDynamoDb);
      // DescribeKey carries no encryption context; every call that does names the token table.
      if (!actions(statement).includes("kms:DescribeKey"))
        expect(conditions["kms:EncryptionContext:aws:dynamodb:tableName"]).toEqual({
          Ref: tableId("WebhookTokenStore"),
        });
      else expect(actions(statement)).toEqual(["kms:DescribeKey"]);
    }
    expect(statements.flatMap(actions).some((action) => action.startsWith("secretsmanager:"))).toBe(
      false,
    );
  });

  it("lets the refresher read, list and write back only its own record table, and open and seal kubeconfigs only", () => {
    const statements = statementsOf(template, "Refresher");
    const granted = statements.flatMap(actions);
    expect([...new Set(granted)].sort()).toEqual(
      [
        "dynamodb:GetItem",
        "dynamodb:Scan",
        "dynamodb:UpdateItem",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sqs:SendMessage",
      ].sort(),
    );
    const records = statements.find((statement) =>
      actions(statement).includes("dynamodb:UpdateItem"),
    ) as Statement;
    expect(records.Resource).toEqual({ "Fn::GetAtt": [tableId("RecordsRefresherTable"), "Arn"] });
    const key = statements.find((statement) =>
      actions(statement).includes("kms:Decrypt"),
    ) as Statement;
    expect(key.Resource).toEqual({ "Fn::GetAtt": [keyId(), "Arn"] });
    expect(key.Condition).toEqual({
      StringEquals: { "kms:EncryptionContext:purpose": "ecr-anywhere-refresher-kubeconfig" },
    });
  });

  it("keeps cluster records in two on-demand tables, AWS-owned encryption, TTL, point-in-time recovery, retained", () => {
    for (const [id, name] of [
      ["RecordsWebhookTable", "ecr-anywhere-clusters-webhook"],
      ["RecordsRefresherTable", "ecr-anywhere-clusters-refresher"],
    ] as const) {
      const table = template.toJSON().Resources[tableId(id)];
      expect(table).toMatchObject({
        DeletionPolicy: "Retain",
        Properties: {
          TableName: name,
          BillingMode: "PAY_PER_REQUEST",
          KeySchema: [{ AttributeName: "clusterId", KeyType: "HASH" }],
          SSESpecification: { SSEEnabled: false },
          TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        },
      });
    }
    const named = synthesize({ records: "team-a-clusters" });
    named.hasResourceProperties("AWS::DynamoDB::Table", { TableName: "team-a-clusters-webhook" });
    named.hasOutput("ClusterRecords", { Value: "team-a-clusters" });
    expect(propsFromContext({ "ecr-anywhere:records": "team-a-clusters" }).props.records).toBe(
      "team-a-clusters",
    );
  });

  it('grants "*" only for actions that have no narrower resource', () => {
    const onlyStar = new Set([
      "ecr:GetAuthorizationToken",
      "ecr-public:GetAuthorizationToken",
      "sts:GetServiceBearerToken",
    ]);
    const policies = template.findResources("AWS::IAM::Policy");
    for (const policy of Object.values(policies)) {
      for (const statement of (
        policy as { Properties: { PolicyDocument: { Statement: Statement[] } } }
      ).Properties.PolicyDocument.Statement) {
        if (resources(statement).includes("*")) {
          for (const action of actions(statement))
            expect(onlyStar, `${action} on "*"`).toContain(action);
        }
        for (const action of actions(statement)) expect(action).not.toMatch(/\*$/);
      }
    }
  });

  it("does not allow sts:AssumeRole at all when no cluster roles are configured", () => {
    const plain = synthesize({});
    expect(statementsOf(plain, "Webhook").flatMap(actions)).not.toContain("sts:AssumeRole");
    const pull = policyStatements(plain, BROKER_USER).find((statement) =>
      actions(statement).includes("ecr:BatchGetImage"),
    ) as Statement;
    expect(JSON.stringify(pull.Resource)).toContain(":repository/*"); // the stack's own account and region
  });

  it("encrypts cluster records with a customer-managed key that rotates", () => {
    template.hasResourceProperties("AWS::KMS::Key", {
      EnableKeyRotation: true,
      Description: Match.stringLikeRegexp("cluster records"),
    });
    template.hasOutput("ClusterRecordKeyArn", {});
  });
});

describe("schedule and observability", () => {
  it("runs the refresher on a schedule with retries and a dead-letter queue", () => {
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(15 minutes)",
      Targets: [
        Match.objectLike({
          RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 900 },
          DeadLetterConfig: Match.anyValue(),
        }),
      ],
    });
    template.hasResourceProperties("AWS::Lambda::EventInvokeConfig", { MaximumRetryAttempts: 0 });
  });

  it("alarms on every failure mode, notifying an encrypted topic", () => {
    const alarms = Object.values(template.findResources("AWS::CloudWatch::Alarm")) as {
      Properties: Record<string, unknown>;
    }[];
    expect(alarms).toHaveLength(10);
    const byMetric = (name: string) =>
      alarms.filter((alarm) => alarm.Properties.MetricName === name);
    expect(byMetric("Errors")).toHaveLength(2); // the refresher's and the broker key rotation's
    // The webhook's: Lambda's Errors miss a 5xx it returns, so its function URL's count is added.
    const webhookErrors = alarms.find((alarm) =>
      JSON.stringify(alarm.Properties.Metrics ?? "").includes("Url5xxCount"),
    );
    expect(JSON.stringify(webhookErrors?.Properties.Metrics)).toContain("errors + url5xx");
    expect(JSON.stringify(webhookErrors?.Properties.Metrics)).toContain('"MetricName":"Errors"');
    expect(byMetric("Throttles")).toHaveLength(1);
    expect(byMetric("Invocations")[0]?.Properties).toMatchObject({
      TreatMissingData: "breaching",
      ComparisonOperator: "LessThanThreshold",
    });
    expect(byMetric("Duration")[0]?.Properties).toMatchObject({
      ExtendedStatistic: "p99",
      Threshold: 5000,
    });
    expect(byMetric("AuthFailures")[0]?.Properties).toMatchObject({
      Namespace: "EcrAnywhere",
      Threshold: 20,
    });
    expect(byMetric("MinRemainingSeconds")[0]?.Properties).toMatchObject({
      Namespace: "EcrAnywhere",
      Statistic: "Minimum",
      Threshold: 7200,
      ComparisonOperator: "LessThanThreshold",
    });
    expect(byMetric("Denials")[0]?.Properties).toMatchObject({
      Namespace: "EcrAnywhere",
      Dimensions: [{ Name: "service", Value: "ecr-anywhere-webhook" }],
      Threshold: 1,
    });
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toHaveLength(1);
      expect(String(alarm.Properties.AlarmDescription).length).toBeGreaterThan(20);
    }
    template.hasResourceProperties("AWS::SNS::Topic", { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties("AWS::SNS::Subscription", {
      Protocol: "email",
      Endpoint: "oncall@example.com",
    });
  });

  it("draws a dashboard of the contract's metrics", () => {
    const dashboard = Object.values(template.findResources("AWS::CloudWatch::Dashboard"))[0] as {
      Properties: { DashboardBody: unknown };
    };
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    for (const metric of [
      "Admissions",
      "Mutations",
      "Denials",
      "AuthFailures",
      "TokenFetches",
      "TokenCacheHits",
      "TokenFetchErrors",
      "SecretsManaged",
      "SecretsStale",
      "SecretsRefreshed",
      "RefreshFailures",
      "ClusterErrors",
      "MinRemainingSeconds",
    ]) {
      expect(body).toContain(metric);
    }
    // Totals only: a ClusterId dimension would cost a metric per cluster. Per-cluster detail is
    // a Logs Insights query over the functions' log lines.
    expect(body).not.toContain("ClusterId");
    expect(body).not.toContain("SEARCH");
    expect(body.match(/by clusterId/g)).toHaveLength(2);
  });
});

describe("pull-through cache", () => {
  it("grants the import actions on the allowed registries only when opted in", () => {
    const optedIn = synthesize({
      allowedRegistries: ["123456789012.dkr.ecr.us-east-1.amazonaws.com"],
      pullThroughCache: true,
    });
    const statement = policyStatements(optedIn, BROKER_USER).find((item) =>
      actions(item).includes("ecr:BatchImportUpstreamImage"),
    ) as Statement;
    expect(actions(statement).sort()).toEqual([
      "ecr:BatchImportUpstreamImage",
      "ecr:CreateRepository",
    ]);
    expect(resources(statement)).toEqual(["arn:aws:ecr:us-east-1:123456789012:repository/*"]);
    expect(policyStatements(template, BROKER_USER).flatMap(actions)).not.toContain(
      "ecr:CreateRepository",
    );
    // Records that do not narrow inherit the stack's setting in their session policy.
    optedIn.hasResourceProperties("AWS::Lambda::Function", {
      Environment: {
        Variables: Match.objectLike({ ECR_ANYWHERE_PULL_THROUGH_CACHE: "true" }),
      },
    });
    expect(
      propsFromContext({ "ecr-anywhere:pullThroughCache": "true" }).props.pullThroughCache,
    ).toBe(true);
  });
});

describe("ECR Public", () => {
  it("grants the public token's two actions, bearer token limited to ECR Public, only when public.ecr.aws is allowed", () => {
    const withPublic = synthesize({ allowedRegistries: [EAST, "public.ecr.aws"] });
    const statements = statementsOf(withPublic, "Webhook");
    const mint = statements.find((item) =>
      actions(item).includes("ecr-public:GetAuthorizationToken"),
    ) as Statement;
    expect(actions(mint)).toEqual(["ecr-public:GetAuthorizationToken"]);
    const bearer = statements.find((item) =>
      actions(item).includes("sts:GetServiceBearerToken"),
    ) as Statement;
    expect(actions(bearer)).toEqual(["sts:GetServiceBearerToken"]);
    expect(bearer.Condition).toEqual({
      StringEquals: { "sts:AWSServiceName": "ecr-public.amazonaws.com" },
    });
    // Its pulls stay those of the private registries listed, and the broker's.
    const pull = policyStatements(withPublic, BROKER_USER).find((item) =>
      actions(item).includes("ecr:BatchGetImage"),
    ) as Statement;
    expect(resources(pull)).toEqual(["arn:aws:ecr:us-east-1:123456789012:repository/*"]);
    for (const plain of [template, synthesize({})])
      expect(statementsOf(plain, "Webhook").flatMap(actions)).not.toEqual(
        expect.arrayContaining(["ecr-public:GetAuthorizationToken"]),
      );
    expect(statementsOf(template, "Webhook").flatMap(actions)).not.toContain(
      "sts:GetServiceBearerToken",
    );
  });

  it("grants no private pulls when ECR Public is the only allowed registry", () => {
    const onlyPublic = synthesize({ allowedRegistries: ["public.ecr.aws"] });
    expect(statementsOf(onlyPublic, "Webhook").flatMap(actions)).not.toContain("ecr:BatchGetImage");
    expect(policyStatements(onlyPublic, BROKER_USER).flatMap(actions)).not.toContain(
      "ecr:BatchGetImage",
    );
  });

  it("refuses public.ecr.aws in a stack of another partition", () => {
    const app = new App();
    expect(
      () =>
        new EcrAnywhereStack(app, "China", {
          env: { region: "cn-north-1", account: "123456789012" },
          ecrAnywhere: { allowedRegistries: ["public.ecr.aws"] },
        }),
    ).toThrow(/public.ecr.aws exists only in partition aws/);
  });
});

describe("token scoping", () => {
  const userPolicy = (synthesized: Template) => policyStatements(synthesized, BROKER_USER);

  it("creates a token broker user with no console, no groups and one inline policy: mint, pull the allowed registries, federate ecr-anywhere-* only", () => {
    template.resourceCountIs("AWS::IAM::User", 1);
    const [user] = Object.values(template.findResources("AWS::IAM::User")) as {
      Properties?: Record<string, unknown>;
    }[];
    expect(user?.Properties?.LoginProfile).toBeUndefined();
    expect(user?.Properties?.Groups).toBeUndefined();
    expect(user?.Properties?.ManagedPolicyArns).toBeUndefined();
    template.resourceCountIs("AWS::IAM::AccessKey", 0); // the key is never in the template
    const statements = userPolicy(template);
    expect([...new Set(statements.flatMap(actions))].sort()).toEqual([
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetAuthorizationToken",
      "ecr:GetDownloadUrlForLayer",
      "sts:GetFederationToken",
    ]);
    const federate = statements.find((statement) =>
      actions(statement).includes("sts:GetFederationToken"),
    ) as Statement;
    expect(JSON.stringify(federate.Resource)).toMatch(
      /":sts::",\{"Ref":"AWS::AccountId"\},":federated-user\/ecr-anywhere-\*"/,
    );
  });

  it("lets the rotation function manage that user's keys and write that one item, and nothing else", () => {
    const statements = policyStatements(template, "EcrAnywhereWebhookTokenBrokerRole");
    expect([...new Set(statements.flatMap(actions))].sort()).toEqual([
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "iam:CreateAccessKey",
      "iam:DeleteAccessKey",
      "iam:ListAccessKeys",
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]);
    const iamStatement = statements.find((statement) =>
      actions(statement).includes("iam:CreateAccessKey"),
    ) as Statement;
    expect(JSON.stringify(iamStatement.Resource)).toMatch(/TokenBrokerUser[A-Z0-9]+", *"Arn"/);
    const item = statements.find((statement) =>
      actions(statement).includes("dynamodb:PutItem"),
    ) as Statement;
    expect(item.Condition).toEqual({
      "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": ["ecr-anywhere/broker-key"] },
    });
    const kms = statements.find((statement) =>
      actions(statement).includes("kms:Encrypt"),
    ) as Statement;
    expect(JSON.stringify(kms.Condition)).toContain("kms:ViaService");
    // The first key is made by the custom resource when the stack deploys; rotation runs daily.
    template.hasResourceProperties("Custom::EcrAnywhereBrokerKey", {
      ServiceToken: { "Fn::GetAtt": [Match.stringLikeRegexp("TokenBroker"), "Arn"] },
      UserName: { Ref: Match.stringLikeRegexp("TokenBrokerUser") },
    });
    template.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(1 day)" });
  });

  it("gives the webhook no IAM action, the broker's name, and no way to write its key", () => {
    const statements = statementsOf(template, "Webhook");
    expect(statements.flatMap(actions).filter((action) => action.startsWith("iam:"))).toEqual([]);
    const deny = statements.find((statement) => statement.Effect === "Deny") as Statement;
    expect(actions(deny).sort()).toEqual(["dynamodb:PutItem", "dynamodb:UpdateItem"]);
    expect(deny.Condition).toEqual({
      "ForAnyValue:StringEquals": { "dynamodb:LeadingKeys": ["ecr-anywhere/broker-key"] },
    });
    template.hasResourceProperties("AWS::Lambda::Function", {
      Environment: {
        Variables: Match.objectLike({
          ECR_ANYWHERE_TOKEN_SCOPING: "federation",
          ECR_ANYWHERE_BROKER_USER: { Ref: Match.stringLikeRegexp("TokenBrokerUser") },
        }),
      },
    });
  });

  it("role-session: no IAM user; a pull role only the webhook may assume, for an hour, holding the pulls", () => {
    const roleSession = synthesize({ allowedRegistries: [EAST], tokenScoping: "role-session" });
    roleSession.resourceCountIs("AWS::IAM::User", 0);
    roleSession.resourceCountIs("AWS::Lambda::Function", 2);
    roleSession.resourceCountIs("Custom::EcrAnywhereBrokerKey", 0);
    const roles = roleSession.findResources("AWS::IAM::Role", {
      Properties: { MaxSessionDuration: 3600 },
    }) as Record<string, { Properties: { AssumeRolePolicyDocument: unknown } }>;
    const [pullRoleId, pullRole] = Object.entries(roles)[0] ?? [];
    expect(JSON.stringify(pullRole?.Properties.AssumeRolePolicyDocument)).toMatch(
      /"AWS":\{"Fn::GetAtt":\["EcrAnywhereWebhookRole[A-Z0-9]+","Arn"\]\}/,
    );
    const pulls = policyStatements(roleSession, String(pullRoleId).replace(/[A-F0-9]{8}$/, ""));
    expect(pulls.flatMap(resources)).toContain("arn:aws:ecr:us-east-1:123456789012:repository/*");
    const assume = statementsOf(roleSession, "Webhook").find((statement) =>
      actions(statement).includes("sts:AssumeRole"),
    ) as Statement;
    expect(JSON.stringify(assume.Resource)).toContain(String(pullRoleId));
    roleSession.hasResourceProperties("AWS::Lambda::Function", {
      Environment: {
        Variables: Match.objectLike({
          ECR_ANYWHERE_TOKEN_SCOPING: "role-session",
          ECR_ANYWHERE_PULL_ROLE_ARN: Match.anyValue(),
        }),
      },
    });
  });

  it("reads the setting from context and refuses anything else, in context and in the construct", () => {
    expect(
      propsFromContext({ "ecr-anywhere:tokenScoping": "role-session" }).props.tokenScoping,
    ).toBe("role-session");
    expect(() => propsFromContext({ "ecr-anywhere:tokenScoping": "none" })).toThrow(/tokenScoping/);
    const app = new App();
    expect(
      () =>
        new EcrAnywhereStack(app, "Bad", {
          ecrAnywhere: { tokenScoping: "none" as never },
        }),
    ).toThrow(/Bad\/EcrAnywhere\/Webhook: tokenScoping must be federation or role-session/);
  });
});

describe("logical IDs", () => {
  // A new logical ID means CloudFormation replaces the resource: a new function URL that every
  // onboarded cluster would have to be told, a new KMS key that records are not encrypted with,
  // lost logs and dead letters. The construct tree keeps them (each construct's function is its
  // `Default` child); this snapshot makes any change to them a deliberate one.
  const STATEFUL = [
    // Not state, but named from outside: cluster roles trust the webhook role's ARN.
    "AWS::IAM::Role",
    // A fixed name: a new logical ID would collide with the old dashboard during an update.
    "AWS::CloudWatch::Dashboard",
    "AWS::Lambda::Function",
    "AWS::Lambda::Url",
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::Logs::LogGroup",
  ];
  const statefulIds = (synthesized: Template) =>
    Object.entries(synthesized.toJSON().Resources as Record<string, { Type: string }>)
      .filter(([, resource]) => STATEFUL.includes(resource.Type))
      .map(([id, resource]) => `${resource.Type} ${id}`)
      .sort();

  it("are pinned for every stateful resource, inline and fan-out", () => {
    expect(statefulIds(template)).toEqual([
      "AWS::CloudWatch::Dashboard EcrAnywhereMonitoringDashboardC56B504E",
      "AWS::DynamoDB::Table EcrAnywhereRecordsRefresherTable1705EB7A",
      "AWS::DynamoDB::Table EcrAnywhereRecordsWebhookTable7C04F72F",
      "AWS::DynamoDB::Table EcrAnywhereWebhookTokenStore170BE49B",
      "AWS::IAM::Role EcrAnywhereRefresherRole9FD18ABE",
      "AWS::IAM::Role EcrAnywhereWebhookRole9BE0757A",
      "AWS::IAM::Role EcrAnywhereWebhookTokenBrokerRole9BF917A6",
      "AWS::KMS::Alias EcrAnywhereClusterRecordKeyAliasB422B44E",
      "AWS::KMS::Key EcrAnywhereClusterRecordKey72C65D9A",
      "AWS::KMS::Key EcrAnywhereMonitoringAlarmTopicKeyF5666C8F",
      "AWS::Lambda::Function EcrAnywhereRefresherE786124A",
      "AWS::Lambda::Function EcrAnywhereWebhookED048BFE",
      "AWS::Lambda::Function EcrAnywhereWebhookTokenBrokerE21146DF",
      "AWS::Lambda::Url EcrAnywhereWebhookFunctionUrlA7719584",
      "AWS::Logs::LogGroup EcrAnywhereRefresherLogs553CD076",
      "AWS::Logs::LogGroup EcrAnywhereWebhookLogs88F9E601",
      "AWS::Logs::LogGroup EcrAnywhereWebhookTokenBrokerLogsB3448F16",
      "AWS::SNS::Topic EcrAnywhereMonitoringAlarmTopic97FF99A3",
      "AWS::SQS::Queue EcrAnywhereRefresherDeadLetters63F2CE8A",
    ]);
    const fanoutOnly = statefulIds(synthesize({ refreshMode: "fanout" })).filter(
      (id) => !statefulIds(template).includes(id),
    );
    expect(fanoutOnly).toEqual([
      "AWS::IAM::Role EcrAnywhereRefresherWorkerRoleFD81D8EF",
      "AWS::Lambda::Function EcrAnywhereRefresherWorkerC0EC1E78",
      "AWS::Logs::LogGroup EcrAnywhereRefresherWorkerLogsFB5BA919",
      "AWS::SQS::Queue EcrAnywhereRefresherFanoutDeadLettersEDFAE4C1",
      "AWS::SQS::Queue EcrAnywhereRefresherFanoutQueueC50176D2",
    ]);
  });

  it("keep the function and its URL where they were before the construct was composed", () => {
    // The two IDs every onboarded cluster depends on, as they were when the parts were inlined.
    const ids = statefulIds(template);
    expect(ids).toContain("AWS::Lambda::Function EcrAnywhereWebhookED048BFE");
    expect(ids).toContain("AWS::Lambda::Url EcrAnywhereWebhookFunctionUrlA7719584");
  });
});

describe("fan-out mode", () => {
  it("adds a queue with a dead-letter queue, a worker fed by it, and their alarms, and still passes cdk-nag", () => {
    const fanout = synthesize({
      refreshMode: "fanout",
      fanoutConcurrency: 20,
      refresherMarkConcurrency: 40,
    });
    template.resourceCountIs("AWS::SQS::Queue", 1);
    fanout.resourceCountIs("AWS::Lambda::Function", 4);
    fanout.hasResourceProperties("AWS::SQS::Queue", {
      RedrivePolicy: { maxReceiveCount: 3, deadLetterTargetArn: Match.anyValue() },
    });
    fanout.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      BatchSize: 1,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ScalingConfig: { MaximumConcurrency: 20 },
    });
    fanout.hasResourceProperties("AWS::Lambda::Function", {
      Environment: {
        Variables: Match.objectLike({
          ECR_ANYWHERE_REFRESH_MODE: "fanout",
          ECR_ANYWHERE_FANOUT_QUEUE_URL: Match.anyValue(),
        }),
      },
    });
    // 20 workers at once share the budget of 40 webhook calls: 2 each.
    fanout.hasResourceProperties("AWS::Lambda::Function", {
      Handler: "index.handler",
      Description: Match.stringLikeRegexp("refresher worker"),
      Environment: { Variables: Match.objectLike({ ECR_ANYWHERE_MARK_CONCURRENCY: "2" }) },
    });
    const workerActions = statementsOf(fanout, "RefresherWorker").flatMap(actions);
    expect(workerActions).toEqual(
      expect.arrayContaining(["dynamodb:GetItem", "dynamodb:UpdateItem", "kms:Decrypt"]),
    );
    // 40 marks over 20 workers leave none over: one-cluster checks mark nothing.
    fanout.hasResourceProperties("AWS::Lambda::Function", {
      Description: Match.stringLikeRegexp("refresher: marks"),
      Environment: {
        Variables: Match.objectLike({ ECR_ANYWHERE_CHECK_MARK_CONCURRENCY: "0" }),
      },
    });
    // The scheduled function lists ids; a one-cluster check reads, opens and writes back one
    // cluster's record, as the worker does.
    const producer = statementsOf(fanout, "Refresher").flatMap(actions);
    expect(producer.filter((action) => /^(dynamodb|kms):/.test(action)).sort()).toEqual([
      "dynamodb:GetItem",
      "dynamodb:Scan",
      "dynamodb:UpdateItem",
      "kms:Decrypt",
      "kms:GenerateDataKey",
    ]);
    expect(statementsOf(fanout, "Refresher").flatMap(actions)).toContain("sqs:SendMessage");
    expect(Object.keys(fanout.findResources("AWS::CloudWatch::Alarm"))).toHaveLength(13);
  });
});

describe("context", () => {
  it("reads every setting, from lists or comma-separated strings", () => {
    const { stackName, props } = propsFromContext({
      "ecr-anywhere:allowedRegistries": `${EAST}, ${WEST}`,
      "ecr-anywhere:clusterRoleArns": [ROLE],
      "ecr-anywhere:refreshIntervalMinutes": "10",
      "ecr-anywhere:refreshBeforeHours": 4,
      "ecr-anywhere:alarmEmail": "",
      "ecr-anywhere:logRetentionDays": 90,
      "ecr-anywhere:stackName": "EcrAnywhereProd",
      "ecr-anywhere:webhookReservedConcurrency": "40",
      "ecr-anywhere:refresherMarkConcurrency": 5,
      "@aws-cdk/core:other": true,
    });
    expect(stackName).toBe("EcrAnywhereProd");
    expect(props.allowedRegistries).toEqual([EAST, WEST]);
    expect(props.refreshInterval?.toMinutes()).toBe(10);
    expect(props.refreshBefore?.toHours()).toBe(4);
    expect(props.alarmEmail).toBeUndefined();
    expect(props.logRetention).toBe(90);
    expect(props.webhookReservedConcurrency).toBe(40);
    expect(props.refresherMarkConcurrency).toBe(5);
  });

  it("ships a cdk.json that changes no documented default", async () => {
    const shipped = JSON.parse(await readFile(join(repo, "cdk.json"), "utf8")) as {
      context: Record<string, unknown>;
    };
    expect(Object.keys(shipped.context).filter((key) => key.startsWith("ecr-anywhere:"))).toEqual(
      [],
    );
  });

  it.each([
    [
      { "ecr-anywhere:allowedRegistries": ["docker.io"] },
      'allowedRegistries.0: "docker.io" is not an ECR registry host (expected <account>.dkr.ecr.<region>.amazonaws.com or public.ecr.aws, lower case, without scheme, port or path); give the hosts as a JSON list in cdk.json (["host", …]) or comma-separated with -c ecr-anywhere:allowedRegistries=host1,host2',
    ],
    [
      { "ecr-anywhere:allowedRegistries": "public.ecr.aws, https://public.ecr.aws" },
      'allowedRegistries.1: "https://public.ecr.aws" is not an ECR registry host',
    ],
    [{ "ecr-anywhere:allowedRegistries": [] }, "an empty list would let tokens pull nothing"],
    [{ "ecr-anywhere:refreshIntervalMinutes": "often" }, "refreshIntervalMinutes"],
    [{ "ecr-anywhere:alarmEmail": "not-an-email" }, "alarmEmail"],
    [
      { "ecr-anywhere:allowedRegistry": [EAST] },
      "unknown CDK context ecr-anywhere:allowedRegistry (a typo?): the ecr-anywhere:* keys are allowedRegistries, ",
    ],
    [{ "ecr-anywhere:logRetentionDays": 31 }, "logRetentionDays must be one of"],
    [{ "ecr-anywhere:refresherMarkConcurrency": "0" }, "refresherMarkConcurrency"],
  ])("rejects %j naming the setting", (context, expected) => {
    expect(() => propsFromContext(context)).toThrow(expected);
  });
});

/** cfn-lint's verdict on a template: no errors, no warnings. */
async function expectCfnLintClean(synthesized: Template): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "ecr-anywhere-cfn-"));
  try {
    const file = join(dir, "template.json");
    await writeFile(file, JSON.stringify(synthesized.toJSON()));
    const result = await run("cfn-lint", [file]).then(
      (output) => ({ code: 0, output: output.stdout + output.stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({
        code: error.code,
        output: error.stdout + error.stderr,
      }),
    );
    expect(result.output).toBe("");
    expect(result.code).toBe(0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("refresher network", () => {
  const VPC = "vpc-0123456789abcdef0";
  const SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"];
  const GROUP = "sg-0123456789abcdef0";
  const networkTypes = (synthesized: Template) =>
    Object.values(synthesized.toJSON().Resources as Record<string, { Type: string }>)
      .map((resource) => resource.Type)
      .filter((type) => type.startsWith("AWS::EC2::"));
  const vpcConfigs = (synthesized: Template) =>
    Object.values(
      synthesized.findResources("AWS::Lambda::Function") as Record<
        string,
        { Properties: { Description: string; VpcConfig?: unknown } }
      >,
    )
      .filter((fn) => /refresher/.test(fn.Properties.Description))
      .map((fn) => fn.Properties.VpcConfig);

  it("by default places nothing in a VPC, and says so in an output", () => {
    expect(networkTypes(template)).toEqual([]);
    expect(vpcConfigs(template)).toEqual([undefined]);
    template.hasOutput("RefresherNetwork", { Value: "public" });
    expect(template.toJSON().Outputs.RefresherEgressAddresses).toBeUndefined();
    expect(statementsOf(template, "Refresher").flatMap(actions)).not.toContain(
      "ec2:CreateNetworkInterface",
    );
  });

  let egress: Template;
  it("static-egress: both functions behind NAT gateways whose Elastic IPs are retained and output, and cfn-lint passes", async () => {
    egress = synthesize({
      refresherNetwork: { mode: "static-egress", natGatewayPerAz: true },
      refreshMode: "fanout",
    });
    const addresses = egress.findResources("AWS::EC2::EIP");
    expect(Object.keys(addresses).sort()).toEqual([
      "EcrAnywhereRefresherNetworkEgressAddress1E898DE7C",
      "EcrAnywhereRefresherNetworkEgressAddress2222D5089",
    ]);
    for (const address of Object.values(addresses))
      expect(address).toMatchObject({ DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
    // Each NAT gateway uses one of those addresses (not one the VPC would make and release).
    const gateways = Object.values(egress.findResources("AWS::EC2::NatGateway")) as {
      Properties: { AllocationId: { "Fn::GetAtt": [string, string] } };
    }[];
    expect(gateways.map((gateway) => gateway.Properties.AllocationId["Fn::GetAtt"]).sort()).toEqual(
      Object.keys(addresses)
        .sort()
        .map((id) => [id, "AllocationId"]),
    );
    // Pinned: a new ID for a NAT gateway, its subnet or the VPC replaces the gateway, and a new
    // gateway cannot take an address the old one still holds (docs/network.md).
    const PINNED = ["EIP", "NatGateway", "Subnet", "VPC", "SecurityGroup"].map(
      (type) => `AWS::EC2::${type}`,
    );
    expect(
      Object.entries(egress.toJSON().Resources as Record<string, { Type: string }>)
        .filter(([, resource]) => PINNED.includes(resource.Type))
        .map(([id, resource]) => `${resource.Type} ${id}`)
        .sort(),
    ).toEqual([
      "AWS::EC2::EIP EcrAnywhereRefresherNetworkEgressAddress1E898DE7C",
      "AWS::EC2::EIP EcrAnywhereRefresherNetworkEgressAddress2222D5089",
      "AWS::EC2::NatGateway EcrAnywhereRefresherNetworkVpcNatSubnet1NATGateway6CFA57C9",
      "AWS::EC2::NatGateway EcrAnywhereRefresherNetworkVpcNatSubnet2NATGateway90882DE5",
      "AWS::EC2::SecurityGroup EcrAnywhereRefresherNetworkSecurityGroup6F58B8B0",
      "AWS::EC2::Subnet EcrAnywhereRefresherNetworkVpcNatSubnet1Subnet2D142BE9",
      "AWS::EC2::Subnet EcrAnywhereRefresherNetworkVpcNatSubnet2Subnet14AB68B2",
      "AWS::EC2::Subnet EcrAnywhereRefresherNetworkVpcRefresherSubnet1SubnetE2AEFB78",
      "AWS::EC2::Subnet EcrAnywhereRefresherNetworkVpcRefresherSubnet2SubnetF74B6101",
      "AWS::EC2::VPC EcrAnywhereRefresherNetworkVpc6515C6ED",
    ]);
    egress.hasOutput("RefresherNetwork", { Value: "static-egress" });
    egress.hasOutput("RefresherEgressAddresses", {
      Value: {
        "Fn::Join": [
          ",",
          Object.keys(addresses)
            .sort()
            .map((id) => ({ "Fn::GetAtt": [id, "PublicIp"] })),
        ],
      },
    });
    // The scheduled function and the worker, in the private subnets, with the one security group.
    const configs = vpcConfigs(egress) as { SubnetIds: unknown[]; SecurityGroupIds: unknown[] }[];
    expect(configs).toHaveLength(2);
    for (const config of configs) {
      expect(config.SubnetIds).toEqual([
        { Ref: "EcrAnywhereRefresherNetworkVpcRefresherSubnet1SubnetE2AEFB78" },
        { Ref: "EcrAnywhereRefresherNetworkVpcRefresherSubnet2SubnetF74B6101" },
      ]);
      expect(config).toEqual(configs[0]);
    }
    // DynamoDB through the free gateway endpoint; KMS and SQS through NAT (no interface endpoints).
    egress.resourceCountIs("AWS::EC2::VPCEndpoint", 1);
    egress.hasResourceProperties("AWS::EC2::VPCEndpoint", {
      VpcEndpointType: "Gateway",
      ServiceName: { "Fn::Join": ["", ["com.amazonaws.", { Ref: "AWS::Region" }, ".dynamodb"]] },
    });
    expect(statementsOf(egress, "RefresherWorker").flatMap(actions)).toContain(
      "ec2:CreateNetworkInterface",
    );
    // Created only once their subnets route through NAT, so no first run lacks egress; never
    // waiting on the role itself, which the reference already orders (cfn-lint W3005).
    const functions = Object.entries(
      egress.findResources("AWS::Lambda::Function", {
        Properties: { VpcConfig: Match.anyValue() },
      }),
    ) as [string, { DependsOn?: string[] }][];
    for (const [id, fn] of functions) {
      expect(fn.DependsOn, id).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^EcrAnywhereRefresherNetworkVpcRefresherSubnet1DefaultRoute/),
          expect.stringMatching(/^EcrAnywhereRefresherNetworkVpcRefresherSubnet2DefaultRoute/),
          expect.stringMatching(/RoleDefaultPolicy/),
        ]),
      );
      expect(
        fn.DependsOn?.filter((dependency) => /Role[0-9A-F]{8}$/.test(dependency)),
        id,
      ).toEqual([]);
    }
    await expectCfnLintClean(egress);
  }, 120_000);

  it("static-egress: one NAT gateway and one address unless asked for one per zone", () => {
    const single = synthesize({ refresherNetwork: { mode: "static-egress" } });
    single.resourceCountIs("AWS::EC2::EIP", 1);
    single.resourceCountIs("AWS::EC2::NatGateway", 1);
    expect(egress.findResources("AWS::EC2::NatGateway")).toSatisfy(
      (found: object) => Object.keys(found).length === 2,
    );
  });

  it("vpc: the user's VPC, subnets and security groups, referenced by id, nothing created", () => {
    const own = synthesize({
      refresherNetwork: { mode: "vpc", vpc: VPC, subnets: SUBNETS, securityGroups: [GROUP] },
    });
    expect(networkTypes(own)).toEqual([]);
    expect(vpcConfigs(own)).toEqual([{ SubnetIds: SUBNETS, SecurityGroupIds: [GROUP] }]);
    own.hasOutput("RefresherNetwork", { Value: "vpc" });
    expect(own.toJSON().Outputs.RefresherEgressAddresses).toBeUndefined();
  });

  it.each([
    [{ mode: "nat" }, "refresherNetwork.mode must be public, static-egress or vpc (got nat)"],
    [{ mode: "vpc", vpc: "vpc-1" }, "vpc must be a VPC id"],
    [{ mode: "vpc", vpc: VPC }, "a VPC given by id needs its subnets given by id"],
    [{ mode: "vpc", vpc: VPC, subnets: [] }, "from 1 to 16 subnet ids"],
    [{ mode: "vpc", vpc: VPC, subnets: ["sn-1"] }, '"sn-1" is not a subnet id'],
    [
      { mode: "vpc", vpc: VPC, subnets: SUBNETS, securityGroups: Array(6).fill(GROUP) },
      "securityGroups: from 1 to 5",
    ],
    [
      { mode: "vpc", vpc: VPC, subnets: SUBNETS, securityGroups: ["default"] },
      "not a security group id",
    ],
  ] as const)("refuses %j", (refresherNetwork, expected) => {
    const app = new App();
    expect(
      () =>
        new EcrAnywhereStack(app, "Bad", {
          ecrAnywhere: {
            refresherNetwork: refresherNetwork as EcrAnywhereProps["refresherNetwork"],
          },
        }),
    ).toThrow(expected);
  });

  it("reads the network settings from context, and refuses settings of another mode", () => {
    expect(
      propsFromContext({
        "ecr-anywhere:refresherNetwork": "static-egress",
        "ecr-anywhere:natGatewayPerAz": "true",
      }).props.refresherNetwork,
    ).toEqual({ mode: "static-egress", natGatewayPerAz: true });
    expect(
      propsFromContext({
        "ecr-anywhere:refresherNetwork": "vpc",
        "ecr-anywhere:vpcId": VPC,
        "ecr-anywhere:vpcSubnetIds": SUBNETS.join(","),
        "ecr-anywhere:vpcSecurityGroupIds": [GROUP],
      }).props.refresherNetwork,
    ).toEqual({ mode: "vpc", vpc: VPC, subnets: SUBNETS, securityGroups: [GROUP] });
    expect(propsFromContext({}).props.refresherNetwork).toBeUndefined();
    expect(() => propsFromContext({ "ecr-anywhere:refresherNetwork": "vpc" })).toThrow(
      "refresherNetwork vpc needs vpcId and vpcSubnetIds",
    );
    expect(() => propsFromContext({ "ecr-anywhere:natGatewayPerAz": true })).toThrow(
      "natGatewayPerAz does not apply to refresherNetwork public",
    );
    expect(() =>
      propsFromContext({
        "ecr-anywhere:refresherNetwork": "static-egress",
        "ecr-anywhere:vpcId": VPC,
      }),
    ).toThrow("vpcId does not apply to refresherNetwork static-egress");
    expect(() => propsFromContext({ "ecr-anywhere:refresherNetwork": "nat" })).toThrow(
      "refresherNetwork",
    );
  });
});

describe("synthesized template", () => {
  it("passes cfn-lint with no errors and no warnings", async () => {
    await expectCfnLintClean(template);
  });

  it("synthesizes with `npm run synth` offline, with no AWS credentials or config", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ecr-anywhere-synth-"));
    try {
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? "",
        HOME: dir, // no ~/.aws
        CDK_DISABLE_VERSION_CHECK: "1",
        AWS_EC2_METADATA_DISABLED: "true",
      };
      await run("npm", ["run", "-s", "synth", "--", "--output", join(dir, "cdk.out")], {
        cwd: repo,
        env,
        timeout: 120_000,
      });
      const synthesized = JSON.parse(
        await readFile(join(dir, "cdk.out/EcrAnywhere.template.json"), "utf8"),
      );
      expect(Object.keys(synthesized.Resources).length).toBeGreaterThan(20);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
