/**
 * A user's newer aws-cdk-lib knows a newer Node.js Lambda runtime than the one the functions are
 * built and tested for: cdk-nag's "latest runtime" rules must not fail their synthesis. A newer
 * aws-cdk-lib is stood in for by registering one more runtime in `Runtime.ALL`, the list those
 * rules read. In a file of its own: the registration is process-wide.
 */
import { App } from "aws-cdk-lib";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FUNCTION_RUNTIME } from "../../infra/constructs/shared.ts";
import type { EcrAnywhereProps } from "../../infra/ecr-anywhere.ts";
import { addSecurityChecks } from "../../infra/nag.ts";
import { EcrAnywhereStack } from "../../infra/stack.ts";

const VARIANTS: Record<string, EcrAnywhereProps> = {
  inline: {},
  fanout: { refreshMode: "fanout" },
  "static-egress": { refresherNetwork: { mode: "static-egress" } },
  vpc: {
    refresherNetwork: {
      mode: "vpc",
      vpc: "vpc-0123456789abcdef0",
      subnets: ["subnet-0123456789abcdef0"],
      securityGroups: ["sg-0123456789abcdef0"],
    },
  },
};

let newer: lambda.Runtime;
beforeAll(() => {
  const major = Number(/^nodejs(\d+)\.x$/.exec(FUNCTION_RUNTIME.name)?.[1]);
  newer = new lambda.Runtime(`nodejs${major + 2}.x`, lambda.RuntimeFamily.NODEJS);
});
afterAll(() => {
  lambda.Runtime.ALL.splice(lambda.Runtime.ALL.indexOf(newer), 1);
});

/** Every Lambda function in the app's tree, whoever made it (ours or a CDK singleton). */
function functionsOf(app: App): lambda.CfnFunction[] {
  return app.node.findAll().filter((node) => node instanceof lambda.CfnFunction);
}

describe("a newer Node.js runtime known to aws-cdk-lib", () => {
  it.each(Object.entries(VARIANTS))(
    "%s: synthesizes cdk-nag-clean on the tested runtime",
    (_, props) => {
      const app = new App();
      new EcrAnywhereStack(app, "Newer", { ecrAnywhere: props });
      addSecurityChecks(app);
      expect(() => app.synth()).not.toThrow();
      const functions = functionsOf(app);
      expect(functions.length).toBeGreaterThanOrEqual(3);
      for (const fn of functions) expect(fn.runtime, fn.node.path).toBe(FUNCTION_RUNTIME.name);
    },
  );

  it("fails a function on the tested runtime that lacks the acknowledgement (the rules see the newer one)", () => {
    const app = new App();
    const stack = new EcrAnywhereStack(app, "Unacknowledged", { ecrAnywhere: {} });
    new lambda.Function(stack, "Plain", {
      runtime: FUNCTION_RUNTIME,
      handler: "index.handler",
      code: lambda.Code.fromInline("export const handler = async () => undefined;"),
    });
    addSecurityChecks(app);
    expect(() => app.synth()).toThrow(/AwsSolutions-L1[\s\S]*Plain|Plain[\s\S]*AwsSolutions-L1/);
  });
});
