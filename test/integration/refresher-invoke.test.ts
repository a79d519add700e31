/**
 * The CLI's call of the deployed refresher (`cli/adapters/refresher-function.ts`) through the real
 * Lambda client against the Lambda stand-in: its answer validated, a handler error and an unknown
 * function named. The functions here are tiny handlers, to shape each answer; the refresher's own
 * bundle behind the stand-in is proven by the bundle and CLI end-to-end tests.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AwsProblem } from "../../cli/adapters/aws.ts";
import { invokeRefresher } from "../../cli/adapters/refresher-function.ts";
import { localAwsEnv } from "../../testbed/aws-env.ts";
import { type LambdaStandIn, startLambdaStandIn } from "../../testbed/lambda-stand-in.ts";

let lambda: LambdaStandIn;
let dir: string;

const REPORT = {
  clusterId: "gke-prod",
  ok: false,
  problems: ["connect ETIMEDOUT 203.0.113.7:6443"],
  secretsManaged: 0,
  secretsStale: 0,
  secretsRefreshed: 0,
  refreshFailures: 0,
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ecr-anywhere-invoke-"));
  const handlers = {
    answers: `export const handler = async (event) => ({ mode: "one-cluster", report: { ...${JSON.stringify(REPORT)}, clusterId: event.clusterId } });`,
    throws: `export const handler = async () => { throw new TypeError("refresher event refused: nope"); };`,
    odd: `export const handler = async () => ({ mode: "inline", clusters: 3 });`,
  };
  const env = localAwsEnv({ records: "http://127.0.0.1:1", sts: "http://127.0.0.1:1", ecr: "" });
  const functions: Record<string, { bundle: string; env: Record<string, string> }> = {};
  for (const [name, code] of Object.entries(handlers)) {
    await writeFile(join(dir, `${name}.mjs`), code);
    functions[name] = { bundle: join(dir, `${name}.mjs`), env };
  }
  lambda = await startLambdaStandIn(functions);
  Object.assign(process.env, {
    AWS_REGION: env.AWS_REGION,
    AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY,
    AWS_ENDPOINT_URL_LAMBDA: lambda.url,
  });
});

afterAll(async () => {
  await lambda?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("the CLI's refresher check call", () => {
  it("sends the one-cluster event and returns the report the refresher answered", async () => {
    await expect(invokeRefresher("answers", "gke-prod", {})).resolves.toEqual(REPORT);
    expect(lambda.invocations.at(-1)).toEqual({
      functionName: "answers",
      event: { clusterId: "gke-prod" },
    });
    // --region reaches the client.
    await invokeRefresher("answers", "gke-prod", { region: "eu-west-1" });
    expect(lambda.calls.at(-1)?.region).toBe("eu-west-1");
  });

  it("names a handler error with Lambda's message, an unknown answer, and a missing function", async () => {
    const error = (name: string) =>
      invokeRefresher(name, "gke-prod", {}).then(
        () => undefined,
        (failure: unknown) => failure,
      );
    const thrown = await error("throws");
    expect(thrown).toBeInstanceOf(AwsProblem);
    expect((thrown as Error).message).toBe(
      "the refresher throws failed (Unhandled): refresher event refused: nope; its log group has the details",
    );
    expect(((await error("odd")) as Error).message).toMatch(
      /^the refresher odd answered what this CLI does not know \(mode: expected "one-cluster"/,
    );
    expect(((await error("missing")) as Error).message).toMatch(
      /^cannot invoke the refresher missing: ResourceNotFoundException: Function not found: missing/,
    );
  });
});
