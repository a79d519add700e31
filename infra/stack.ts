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
 * the webhook URL, the alarm topic, the records name, the record key, the allowed registries and
 * the refresher.
 */
export class EcrAnywhereStack extends Stack {
  readonly ecrAnywhere: EcrAnywhere;

  constructor(scope: Construct, id: string, props: EcrAnywhereStackProps = {}) {
    super(scope, id, props);
    this.ecrAnywhere = new EcrAnywhere(this, "EcrAnywhere", props.ecrAnywhere);
    addEcrAnywhereOutputs(this, this.ecrAnywhere);
  }
}

/**
 * The outputs the CLI reads (`--stack`): `onboard`, `put-record`, `status` and `doctor` find the
 * webhook URL, the records name, the record key, the allowed registries, the refresher's function
 * and network here. A stack of
 * your own that holds the construct adds them with this, exactly as `EcrAnywhereStack` does.
 */
export function addEcrAnywhereOutputs(stack: Stack, ecrAnywhere: EcrAnywhere): void {
  new CfnOutput(stack, "WebhookUrl", {
    description: "Function URL of the webhook; clusters use <url>v1/clusters/<cluster-id>/<token>",
    value: ecrAnywhere.functionUrl.url,
  });
  new CfnOutput(stack, "AlarmTopicArn", {
    description: "SNS topic the alarms notify",
    value: ecrAnywhere.alarmTopic.topicArn,
  });
  new CfnOutput(stack, "ClusterRecords", {
    description:
      "Records name N of the cluster record tables <N>-webhook and <N>-refresher (the CLI's --records)",
    value: ecrAnywhere.records.recordsName,
  });
  new CfnOutput(stack, "ClusterRecordKeyArn", {
    description: "KMS key that seals the refresher's kubeconfigs in cluster records",
    value: ecrAnywhere.recordKey.keyArn,
  });
  new CfnOutput(stack, "AllowedRegistries", {
    description:
      "Comma-separated registry hosts the stack's tokens may pull from (onboard refuses --registries outside them)",
    value: Fn.join(",", [...ecrAnywhere.allowedRegistries]),
  });
  new CfnOutput(stack, "RefresherFunctionName", {
    description:
      'The refresher function: onboard invokes it with {"clusterId": "<id>"} to prove it reaches the cluster\'s API server',
    value: ecrAnywhere.refresher.functionName,
  });
  new CfnOutput(stack, "RefresherNetwork", {
    description:
      "Where the refresher connects to API servers from: public, static-egress or vpc (the CLI's onboard reads it)",
    value: ecrAnywhere.refresherNetworkMode,
  });
  const egress = ecrAnywhere.refresherNetwork?.egressAddresses ?? [];
  if (egress.length > 0)
    new CfnOutput(stack, "RefresherEgressAddresses", {
      description:
        "The refresher's public IPv4 addresses (retained Elastic IPs): allow these on your API servers' port",
      value: Fn.join(
        ",",
        egress.map((address) => address.attrPublicIp),
      ),
    });
}
