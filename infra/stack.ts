/** The deployable stack: the EcrAnywhere construct, its outputs, and the security checks. */
import { CfnOutput, Fn, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { EcrAnywhere, type EcrAnywhereProps } from "./ecr-anywhere.ts";

export interface EcrAnywhereStackProps extends StackProps {
  /** The props of the stack's `EcrAnywhere` construct. */
  readonly ecrAnywhere?: EcrAnywhereProps;
}

/**
 * The `EcrAnywhere` construct in a stack of its own, with the outputs the CLI reads (`--stack`):
 * the webhook URL, the alarm topic, the records name and the record key.
 */
export class EcrAnywhereStack extends Stack {
  readonly ecrAnywhere: EcrAnywhere;

  constructor(scope: Construct, id: string, props: EcrAnywhereStackProps = {}) {
    super(scope, id, props);
    this.ecrAnywhere = new EcrAnywhere(this, "EcrAnywhere", props.ecrAnywhere);
    new CfnOutput(this, "WebhookUrl", {
      description:
        "Function URL of the webhook; clusters use <url>v1/clusters/<cluster-id>/<token>",
      value: this.ecrAnywhere.functionUrl.url,
    });
    new CfnOutput(this, "AlarmTopicArn", {
      description: "SNS topic the alarms notify",
      value: this.ecrAnywhere.alarmTopic.topicArn,
    });
    new CfnOutput(this, "ClusterRecords", {
      description:
        "Records name N of the cluster record tables <N>-webhook and <N>-refresher (the CLI's --records)",
      value: this.ecrAnywhere.records.recordsName,
    });
    new CfnOutput(this, "ClusterRecordKeyArn", {
      description: "KMS key that seals the refresher's kubeconfigs in cluster records",
      value: this.ecrAnywhere.recordKey.keyArn,
    });
    new CfnOutput(this, "RefresherNetwork", {
      description:
        "Where the refresher connects to API servers from: public, static-egress or vpc (the CLI's onboard reads it)",
      value: this.ecrAnywhere.refresherNetworkMode,
    });
    const egress = this.ecrAnywhere.refresherNetwork?.egressAddresses ?? [];
    if (egress.length > 0)
      new CfnOutput(this, "RefresherEgressAddresses", {
        description:
          "The refresher's public IPv4 addresses (retained Elastic IPs): allow these on your API servers' port",
        value: Fn.join(
          ",",
          egress.map((address) => address.attrPublicIp),
        ),
      });
  }
}
