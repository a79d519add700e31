/**
 * Where the refresher's connections to the clusters' API servers come from. By default Lambda's
 * own network (AWS's public addresses, which no firewall can allow-list narrowly); opt-in, a VPC
 * whose NAT gateways hold retained Elastic IPs (a few addresses to allow-list), or the user's own
 * VPC (API servers that must stay private, reached over VPN, Direct Connect or Transit Gateway).
 */
import { Fn, RemovalPolicy } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import { Construct } from "constructs";
import type { RefresherNetworkMode } from "../../functions/core/network.ts";
import { acknowledge, type FunctionPlacement, throwIfInvalid } from "./shared.ts";

/** The refresher's network: see docs/network.md for when to use each. */
export type RefresherNetworkProps =
  | { readonly mode: "public" }
  | {
      readonly mode: "static-egress";
      /**
       * One NAT gateway (and address) per availability zone, so losing a zone does not stop the
       * refresher; each costs as much as the first. @default false: one NAT gateway
       */
      readonly natGatewayPerAz?: boolean | undefined;
    }
  | {
      readonly mode: "vpc";
      /** The VPC, or its id (`vpc-…`; then `subnets` must be ids). */
      readonly vpc: ec2.IVpc | string;
      /**
       * Subnets for the functions' network interfaces: they need routes to the API servers and to
       * DynamoDB, KMS and (fan-out) SQS. @default the VPC's private subnets with egress (an
       * `ec2.IVpc` only)
       */
      readonly subnets?: ec2.SubnetSelection | readonly string[] | undefined;
      /**
       * Security groups of the functions' network interfaces (ids or objects): they must allow
       * outbound HTTPS to the API servers and AWS. @default a new group allowing all outbound
       */
      readonly securityGroups?: readonly (ec2.ISecurityGroup | string)[] | undefined;
    };

/** Availability zones of the static-egress VPC: two, so one zone's outage does not stop refreshes. */
const STATIC_EGRESS_ZONES = 2;
/** Lambda's own limits on a function's VPC configuration. */
const MAX_SUBNETS = 16;
const MAX_SECURITY_GROUPS = 5;

/**
 * The refresher's network in a non-`public` mode: for `static-egress` a VPC with private subnets
 * behind NAT gateways whose Elastic IPs are separate, retained resources (the VPC's parts can be
 * replaced, and the stack deleted, without losing the addresses firewalls allow); for `vpc` the
 * user's VPC, subnets and security groups, referenced, never changed.
 */
export class EcrAnywhereRefresherNetwork extends Construct {
  readonly mode: Exclude<RefresherNetworkMode, "public">;
  readonly placement: FunctionPlacement;
  /** `static-egress` only: the Elastic IPs every refresher connection leaves from. */
  readonly egressAddresses: ec2.CfnEIP[] = [];

  constructor(
    scope: Construct,
    id: string,
    props: Exclude<RefresherNetworkProps, { mode: "public" }>,
  ) {
    super(scope, id);
    this.mode = props.mode;
    if (props.mode === "static-egress") {
      this.placement = this.#staticEgress(props.natGatewayPerAz === true);
      return;
    }
    validateVpcProps(this, props);
    const vpc =
      typeof props.vpc === "string"
        ? ec2.Vpc.fromVpcAttributes(this, "Vpc", {
            vpcId: props.vpc,
            availabilityZones: Fn.getAzs(),
          })
        : props.vpc;
    const subnets = props.subnets;
    const vpcSubnets: ec2.SubnetSelection = isIdList(subnets)
      ? {
          subnets: subnets.map((subnetId, index) =>
            ec2.Subnet.fromSubnetId(this, `Subnet${index + 1}`, subnetId),
          ),
        }
      : (subnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS });
    const securityGroups = props.securityGroups?.map((group, index) =>
      typeof group === "string"
        ? ec2.SecurityGroup.fromSecurityGroupId(this, `SecurityGroup${index + 1}`, group)
        : group,
    ) ?? [this.#securityGroup(vpc)];
    this.placement = { vpc, vpcSubnets, securityGroups };
  }

  #staticEgress(natGatewayPerAz: boolean): FunctionPlacement {
    const gateways = natGatewayPerAz ? STATIC_EGRESS_ZONES : 1;
    // Not the VPC's children, and retained: stack updates keep them (their logical IDs are pinned
    // by tests), and deleting the stack leaves them in the account, to be released by hand. A new
    // stack allocates new ones: firewalls must then be told (docs/network.md).
    for (let index = 0; index < gateways; index++) {
      const address = new ec2.CfnEIP(this, `EgressAddress${index + 1}`, {
        domain: "vpc",
        tags: [{ key: "Name", value: "ecr-anywhere refresher egress" }],
      });
      address.applyRemovalPolicy(RemovalPolicy.RETAIN);
      this.egressAddresses.push(address);
    }
    const vpc = new ec2.Vpc(this, "Vpc", {
      maxAzs: STATIC_EGRESS_ZONES,
      natGateways: gateways,
      natGatewayProvider: ec2.NatProvider.gateway({
        eipAllocationIds: this.egressAddresses.map((address) => address.attrAllocationId),
      }),
      subnetConfiguration: [
        { name: "Nat", subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: "Refresher", subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
      ],
      // Nothing is ever placed in the default security group; restricting it would take a
      // custom-resource function of its own.
      restrictDefaultSecurityGroup: false,
      // DynamoDB through a free gateway endpoint; KMS and SQS (a few KB a run) through NAT, which
      // is cheaper than interface endpoints (docs/network.md, "AWS API calls from the VPC").
      gatewayEndpoints: { DynamoDb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB } },
    });
    acknowledge(vpc, {
      "AwsSolutions-VPC7":
        "The VPC carries only the refresher's outbound HTTPS to API servers and AWS APIs; the functions log every cluster they reach, and flow logs would add cost for no finding they lack.",
    });
    return {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [this.#securityGroup(vpc)],
    };
  }

  /** Outbound only: the functions accept no connections, and reach API servers on any port. */
  #securityGroup(vpc: ec2.IVpc): ec2.SecurityGroup {
    return new ec2.SecurityGroup(this, "SecurityGroup", {
      vpc,
      description: "ecr-anywhere refresher: outbound to API servers and AWS APIs, nothing inbound",
      allowAllOutbound: true,
    });
  }
}

function isIdList(
  subnets: ec2.SubnetSelection | readonly string[] | undefined,
): subnets is readonly string[] {
  return Array.isArray(subnets);
}

function validateVpcProps(
  scope: Construct,
  props: Extract<RefresherNetworkProps, { mode: "vpc" }>,
): void {
  const subnetIds = isIdList(props.subnets) ? props.subnets : undefined;
  const groupIds = (props.securityGroups ?? []).filter((group) => typeof group === "string");
  throwIfInvalid(scope, [
    typeof props.vpc === "string" && !/^vpc-[0-9a-f]{8,17}$/.test(props.vpc)
      ? `vpc must be a VPC id such as vpc-0123456789abcdef0 (got ${JSON.stringify(props.vpc)})`
      : undefined,
    typeof props.vpc === "string" && subnetIds === undefined
      ? "a VPC given by id needs its subnets given by id: the construct does not look them up"
      : undefined,
    subnetIds !== undefined && (subnetIds.length === 0 || subnetIds.length > MAX_SUBNETS)
      ? `subnets: from 1 to ${MAX_SUBNETS} subnet ids (got ${subnetIds.length})`
      : undefined,
    ...(subnetIds ?? []).map((subnetId) =>
      /^subnet-[0-9a-f]{8,17}$/.test(subnetId)
        ? undefined
        : `subnets: ${JSON.stringify(subnetId)} is not a subnet id`,
    ),
    props.securityGroups !== undefined &&
    (props.securityGroups.length === 0 || props.securityGroups.length > MAX_SECURITY_GROUPS)
      ? `securityGroups: from 1 to ${MAX_SECURITY_GROUPS} (got ${props.securityGroups.length}); leave it unset for a new group`
      : undefined,
    ...groupIds.map((groupId) =>
      /^sg-[0-9a-f]{8,17}$/.test(groupId)
        ? undefined
        : `securityGroups: ${JSON.stringify(groupId)} is not a security group id`,
    ),
  ]);
}
