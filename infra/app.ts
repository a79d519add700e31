/** CDK app: `cdk deploy` deploys the ecr-anywhere stack, configured from context (cdk.json). */
import { App } from "aws-cdk-lib";
import { propsFromContext } from "./config.ts";
import { addSecurityChecks } from "./nag.ts";
import { EcrAnywhereStack } from "./stack.ts";

const app = new App();
const { stackName, props } = propsFromContext(app.node.getAllContext());
new EcrAnywhereStack(app, stackName, {
  description: "ecr-anywhere: fresh Amazon ECR pull credentials for any Kubernetes cluster",
  ecrAnywhere: props,
});
addSecurityChecks(app);
