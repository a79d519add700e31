/**
 * Each construct stands alone (its own props, its own validation) and the functions' environment
 * comes from the names functions/core/config.ts reads.
 */
import { App, Duration, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as kms from "aws-cdk-lib/aws-kms";
import * as logs from "aws-cdk-lib/aws-logs";
import { describe, expect, it } from "vitest";
import { ENV } from "../../functions/core/config.ts";
import { DEFAULT_RECORDS_NAME, METRICS_NAMESPACE } from "../../functions/core/contract.ts";
import { EcrAnywhereMonitoring } from "../../infra/constructs/monitoring.ts";
import { EcrAnywhereRefresherNetwork } from "../../infra/constructs/network.ts";
import { EcrAnywhereRecords } from "../../infra/constructs/records.ts";
import {
  EcrAnywhereRefresher,
  type EcrAnywhereRefresherProps,
} from "../../infra/constructs/refresher.ts";
import { EcrAnywhereValidationError } from "../../infra/constructs/shared.ts";
import {
  EcrAnywhereWebhook,
  type EcrAnywhereWebhookProps,
} from "../../infra/constructs/webhook.ts";
import { EcrAnywhere, instanceNames } from "../../infra/ecr-anywhere.ts";

const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

function records(stack: Stack) {
  return {
    recordKey: (stack.node.tryFindChild("Key") as kms.Key | undefined) ?? new kms.Key(stack, "Key"),
    labelPrefix: "ecr-anywhere.centml.ai",
    logRetention: logs.RetentionDays.ONE_WEEK,
  };
}

/** A record table made elsewhere (another stack, or by hand), as a construct is given one. */
const importedTable = (stack: Stack, name: string) =>
  dynamodb.Table.fromTableName(stack, `${name}Table`, name);

const webhookProps = (stack: Stack): EcrAnywhereWebhookProps => ({
  ...records(stack),
  recordTable: importedTable(stack, "ecr-anywhere-clusters-webhook"),
  allowedRegistries: [EAST],
  pullThroughCache: false,
  recordCacheTtl: Duration.seconds(60),
});

const refresherProps = (stack: Stack): EcrAnywhereRefresherProps => ({
  ...records(stack),
  recordTable: importedTable(stack, "ecr-anywhere-clusters-refresher"),
  refreshInterval: Duration.minutes(15),
  refreshBefore: Duration.hours(6),
  markBudget: 25,
  mode: "inline",
});

const newStack = () => new Stack(new App(), "Alone", { env: { region: "us-east-1" } });

describe("constructs that stand alone", () => {
  it("compose by hand into a webhook, a refresher and their monitoring, whose functions read only the configured names", () => {
    const stack = newStack();
    const webhook = new EcrAnywhereWebhook(stack, "Webhook", webhookProps(stack));
    const refresher = new EcrAnywhereRefresher(stack, "Refresher", {
      ...refresherProps(stack),
      recordKey: kms.Key.fromKeyArn(
        stack,
        "Imported",
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
      ),
    });
    new EcrAnywhereMonitoring(stack, "Monitoring", {
      webhook,
      refresher,
      refreshInterval: Duration.minutes(15),
    });
    const template = Template.fromStack(stack);
    // The webhook, its token broker's key rotation, and the refresher.
    template.resourceCountIs("AWS::Lambda::Function", 3);
    template.resourceCountIs("AWS::Lambda::Url", 1);
    template.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
    const functions = Object.values(
      template.findResources("AWS::Lambda::Function") as Record<
        string,
        { Properties: { Environment: { Variables: Record<string, unknown> } } }
      >,
    );
    const known = new Set<string>(Object.values(ENV));
    for (const fn of functions)
      for (const name of Object.keys(fn.Properties.Environment.Variables))
        expect(known, `${name} is not a name functions/core/config.ts reads`).toContain(name);
  });
});

describe("validation in the constructor", () => {
  it.each<[string, (stack: Stack) => void, RegExp]>([
    [
      "a record cache longer than an hour",
      (stack) =>
        new EcrAnywhereWebhook(stack, "W", {
          ...webhookProps(stack),
          recordCacheTtl: Duration.hours(2),
        }),
      /Alone\/W: recordCacheTtl must be from 1 second to 1 hour/,
    ],
    [
      "an empty list of allowed registries",
      (stack) =>
        new EcrAnywhereWebhook(stack, "W", { ...webhookProps(stack), allowedRegistries: [] }),
      /Alone\/W: allowedRegistries is empty, which would let tokens pull nothing/,
    ],
    [
      "an allowed registry that is not an ECR host, shown with the forms accepted",
      (stack) =>
        new EcrAnywhereWebhook(stack, "W", {
          ...webhookProps(stack),
          allowedRegistries: ["docker.io"],
        }),
      /allowedRegistries: "docker\.io" is not an ECR registry host \(expected <account>\.dkr\.ecr\.<region>\.amazonaws\.com or public\.ecr\.aws/,
    ],
    [
      "a reserved concurrency of zero",
      (stack) =>
        new EcrAnywhereWebhook(stack, "W", {
          ...webhookProps(stack),
          reservedConcurrentExecutions: 0,
        }),
      /reservedConcurrentExecutions must be a whole number >= 1/,
    ],
    [
      "refreshing more than 11 hours early",
      (stack) =>
        new EcrAnywhereRefresher(stack, "R", {
          ...refresherProps(stack),
          refreshBefore: Duration.hours(12),
        }),
      /Alone\/R: refreshBefore must be from 1 minute to 11 hours/,
    ],
    [
      "a schedule in seconds",
      (stack) =>
        new EcrAnywhereRefresher(stack, "R", {
          ...refresherProps(stack),
          refreshInterval: Duration.seconds(90),
        }),
      /refreshInterval must be whole minutes/,
    ],
    [
      "fanoutConcurrency without fan-out (it would be ignored)",
      (stack) => new EcrAnywhere(stack, "E", { fanoutConcurrency: 20 }),
      /Alone\/E\/Refresher: fanoutConcurrency applies only to mode fanout/,
    ],
    [
      "more fan-out workers than marks in flight (each keeps one: a refresh would take more of the webhook than its budget)",
      (stack) =>
        new EcrAnywhere(stack, "E", {
          webhookReservedConcurrency: 50,
          refreshMode: "fanout",
          fanoutConcurrency: 100,
        }),
      /Alone\/E\/Refresher: fanoutConcurrency \(100\) may not exceed the refresher's mark concurrency \(10\)/,
    ],
    [
      "a refresh mode that does not exist (it would run inline)",
      (stack) => new EcrAnywhere(stack, "E", { refreshMode: "fan-out" as never }),
      /Alone\/E: refreshMode must be inline or fanout/,
    ],
    [
      "a label prefix Kubernetes would refuse",
      (stack) => new EcrAnywhere(stack, "E", { labelPrefix: "Not_A_Domain" }),
      /Alone\/E: labelPrefix: label prefix "Not_A_Domain" is not a DNS subdomain/,
    ],
    [
      "an alarm email that is no address",
      (stack) => new EcrAnywhere(stack, "E", { alarmEmail: "oncall" }),
      /Alone\/E: alarmEmail must be an email address/,
    ],
    [
      "a second instance with the records name of the first (its tables would collide)",
      (stack) => {
        new EcrAnywhere(stack, "First");
        new EcrAnywhere(stack, "Second");
      },
      /Alone\/Second\/Records: records name "ecr-anywhere-clusters" is already used by Alone\/First\/Records/,
    ],
    [
      "a records name that makes no table name",
      (stack) => new EcrAnywhereRecords(stack, "Records", { recordsName: "no spaces allowed" }),
      /Alone\/Records: recordsName must be 1 to 200 of/,
    ],
    [
      "an alarm email beside an existing topic (it would never be subscribed)",
      (stack) =>
        new EcrAnywhere(stack, "E", {
          alarmEmail: "oncall@example.com",
          alarmTopic: { topicArn: "arn:aws:sns:us-east-1:123456789012:t" } as never,
        }),
      /alarmEmail subscribes to the topic this construct creates/,
    ],
  ])("refuses %s, naming the construct", (_, build, message) => {
    const stack = newStack();
    expect(() => build(stack)).toThrow(EcrAnywhereValidationError);
    expect(() => build(newStack())).toThrow(message);
  });
});

/**
 * The properties that give a resource a physical name (unique in an account, or an account and
 * region): a template that sets one fixes a name two instances would share.
 */
const PHYSICAL_NAMES = new Set([
  "AlarmName",
  "AliasName",
  "DashboardName",
  "FunctionName",
  "LogGroupName",
  "ManagedPolicyName",
  "Name",
  "QueueName",
  "RoleName",
  "ScheduleName",
  "TableName",
  "TopicName",
  "UserName",
]);

const isReference = (value: unknown) =>
  typeof value === "object" && value !== null && ("Ref" in value || "Fn::GetAtt" in value);

function physicalNames(template: Template): string[] {
  const resources = Object.values(
    template.toJSON().Resources as Record<string, { Properties?: Record<string, unknown> }>,
  );
  return resources.flatMap((resource) =>
    Object.entries(resource.Properties ?? {})
      // A reference (a Lambda permission's FunctionName) names nothing new.
      .filter(([key, value]) => PHYSICAL_NAMES.has(key) && !isReference(value))
      .map(([, value]) => JSON.stringify(value)),
  );
}

describe("fan-out under a small mark budget", () => {
  it("runs no more workers at once than marks in flight: the default follows the budget", () => {
    const stack = newStack();
    // A reservation of 10 leaves the refresher 5 marks; 10 workers with one each would take all 10.
    new EcrAnywhere(stack, "E", { webhookReservedConcurrency: 10, refreshMode: "fanout" });
    const template = Template.fromStack(stack);
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      ScalingConfig: { MaximumConcurrency: 5 },
    });
    template.hasResourceProperties("AWS::Lambda::Function", {
      Description: Match.stringLikeRegexp("refresher worker"),
      Environment: { Variables: Match.objectLike({ [ENV.markConcurrency]: "1" }) },
    });
  });
});

describe("two instances", () => {
  it("coexist in one stack with two records names: no physical name is shared", () => {
    const stack = newStack();
    new EcrAnywhere(stack, "Prod", { records: "prod-clusters" });
    new EcrAnywhere(stack, "Staging", { records: "staging-clusters" });
    const names = physicalNames(Template.fromStack(stack));
    // Four record tables, two key aliases, two dashboards.
    expect(names).toHaveLength(8);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('"alias/ecr-anywhere/prod-clusters"');
    expect(names).toContain('"ecr-anywhere-staging-clusters-us-east-1"');
    // Without an environment, the dashboard's name (dashboards are global) takes the region then.
    const agnostic = new Stack(new App(), "Agnostic");
    new EcrAnywhere(agnostic, "EcrAnywhere");
    expect(physicalNames(Template.fromStack(agnostic))).toContain(
      JSON.stringify({
        "Fn::Join": ["", ["ecr-anywhere-ecr-anywhere-clusters-", { Ref: "AWS::Region" }]],
      }),
    );
  });

  it("keep their custom metrics and the alarms on them apart: a second instance adds an instance dimension", () => {
    const stack = newStack();
    new EcrAnywhere(stack, "Prod", { records: DEFAULT_RECORDS_NAME });
    new EcrAnywhere(stack, "Staging", { records: "staging-clusters" });
    const template = Template.fromStack(stack).toJSON() as {
      Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
    };
    const resources = Object.entries(template.Resources);
    const instanceOf = (id: string) =>
      (
        template.Resources[id]?.Properties?.Environment as
          | { Variables?: Record<string, unknown> }
          | undefined
      )?.Variables?.[ENV.metricsInstance];
    const functions = resources.filter(
      ([id, resource]) =>
        resource.Type === "AWS::Lambda::Function" &&
        /^(Prod|Staging)(Webhook|Refresher)[0-9A-F]{8}$/.test(id),
    );
    expect(functions.map(([id]) => [id.startsWith("Staging"), instanceOf(id)]).sort()).toEqual([
      [false, undefined],
      [false, undefined],
      [true, "staging-clusters"],
      [true, "staging-clusters"],
    ]);
    const customAlarms = resources.filter(
      ([, resource]) =>
        resource.Type === "AWS::CloudWatch::Alarm" &&
        resource.Properties?.Namespace === METRICS_NAMESPACE,
    );
    expect(customAlarms.length).toBeGreaterThan(2);
    for (const [id, alarm] of customAlarms) {
      const dimensions = (alarm.Properties?.Dimensions ?? []) as { Name: string; Value: unknown }[];
      const instance = dimensions.find((dimension) => dimension.Name === "instance");
      expect([id, instance?.Value]).toEqual([
        id,
        id.startsWith("Staging") ? "staging-clusters" : undefined,
      ]);
    }
  });

  it("may share a records name in stacks of different regions, not in two stacks without one", () => {
    const app = new App();
    for (const region of ["us-east-1", "eu-west-1"])
      new EcrAnywhere(new Stack(app, `In-${region}`, { env: { region } }), "EcrAnywhere");
    const agnostic = new App();
    new EcrAnywhere(new Stack(agnostic, "One"), "EcrAnywhere");
    expect(() => new EcrAnywhere(new Stack(agnostic, "Two"), "EcrAnywhere")).toThrow(
      /Two\/EcrAnywhere\/Records: records name "ecr-anywhere-clusters" is already used by One\/EcrAnywhere\/Records/,
    );
  });

  it("derive names KMS and CloudWatch accept from any records name, apart when only a dot differs", () => {
    const dotted = instanceNames("team.prod");
    const underscored = instanceNames("team_prod");
    expect(dotted.keyAlias).toMatch(/^alias\/ecr-anywhere\/team_prod-[0-9a-f]{8}$/);
    expect(underscored.keyAlias).toBe("alias/ecr-anywhere/team_prod");
    expect(dotted.dashboardPrefix).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(dotted.dashboardPrefix).not.toBe(underscored.dashboardPrefix);
  });
});

describe("the refresher's network, standing alone", () => {
  it("places the refresher in a VPC object's private subnets with a new outbound-only security group", () => {
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, "Own", { maxAzs: 2, natGateways: 1 });
    const network = new EcrAnywhereRefresherNetwork(stack, "Network", { mode: "vpc", vpc });
    new EcrAnywhereRefresher(stack, "Refresher", {
      ...refresherProps(stack),
      placement: network.placement,
    });
    const template = Template.fromStack(stack);
    const privateSubnets = vpc.privateSubnets.map((subnet) => ({
      Ref: stack.getLogicalId(subnet.node.defaultChild as ec2.CfnSubnet),
    }));
    template.hasResourceProperties("AWS::Lambda::Function", {
      VpcConfig: {
        SubnetIds: privateSubnets,
        SecurityGroupIds: [
          {
            "Fn::GetAtt": [
              stack.getLogicalId(
                network.placement.securityGroups[0]?.node.defaultChild as ec2.CfnSecurityGroup,
              ),
              "GroupId",
            ],
          },
        ],
      },
    });
    template.hasResourceProperties("AWS::EC2::SecurityGroup", {
      SecurityGroupEgress: [{ CidrIp: "0.0.0.0/0", IpProtocol: "-1" }],
    });
    template.resourceCountIs("AWS::EC2::EIP", 1); // the user's own VPC's NAT address, not ours
    expect(network.egressAddresses).toEqual([]);
  });
});
