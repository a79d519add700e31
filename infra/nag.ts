/** The security checks every synthesis runs: cdk-nag's AWS Solutions and Serverless packs. */
import { type App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks, ServerlessChecks } from "cdk-nag";

/**
 * Synthesis fails on any finding not acknowledged in code; each acknowledgement sits next to the
 * resource it concerns (infra/ecr-anywhere.ts) and says why.
 */
export function addSecurityChecks(app: App): void {
  Validations.of(app).addPlugins(
    new AwsSolutionsChecks(app, { verbose: true }),
    new ServerlessChecks(app, { verbose: true }),
  );
}
