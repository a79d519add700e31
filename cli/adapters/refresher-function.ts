/**
 * The deployed refresher, invoked synchronously with a one-cluster event (docs/contract.md,
 * "The refresher's events"): what it saw of one cluster, from AWS's side of the network. Its
 * answer is validated here, at the boundary; problems come redacted by the refresher itself.
 */
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import * as v from "valibot";
import { parseJson, parseWith } from "../../functions/core/validation.ts";
import { type AwsClientConfig, AwsProblem, awsMessage } from "./aws.ts";

const count = v.pipe(v.number(), v.integer(), v.minValue(0));
const OneClusterAnswer = v.object({
  mode: v.literal("one-cluster"),
  report: v.object({
    clusterId: v.string(),
    ok: v.boolean(),
    problems: v.array(v.string()),
    secretsManaged: count,
    secretsStale: count,
    secretsRefreshed: count,
    refreshFailures: count,
  }),
});

export type RefresherReport = v.InferOutput<typeof OneClusterAnswer>["report"];

/**
 * Longer than one cluster's deadline in the refresher (90 s), so its own answer, not this
 * timeout, says why a slow cluster failed.
 */
const INVOKE_TIMEOUT_MS = 150_000;

export async function invokeRefresher(
  functionName: string,
  clusterId: string,
  aws: AwsClientConfig,
): Promise<RefresherReport> {
  const client = new LambdaClient(aws);
  let answer: { FunctionError?: string | undefined; Payload?: Uint8Array | undefined };
  try {
    answer = await client.send(
      new InvokeCommand({
        FunctionName: functionName,
        InvocationType: "RequestResponse",
        Payload: new TextEncoder().encode(JSON.stringify({ clusterId })),
      }),
      { abortSignal: AbortSignal.timeout(INVOKE_TIMEOUT_MS) },
    );
  } catch (error) {
    const denied = error instanceof Error && error.name === "AccessDeniedException";
    throw new AwsProblem(
      `cannot invoke the refresher ${functionName}: ${awsMessage(error)}${denied ? " (allow lambda:InvokeFunction on it: docs/onboard.md, or pass --skip-refresher-check)" : ""}`,
    );
  } finally {
    client.destroy();
  }
  const text = new TextDecoder().decode(answer.Payload ?? new Uint8Array());
  if (answer.FunctionError) {
    const body = parseJson(text);
    const message =
      body.ok && typeof (body.value as { errorMessage?: unknown }).errorMessage === "string"
        ? (body.value as { errorMessage: string }).errorMessage
        : answer.FunctionError;
    throw new AwsProblem(
      `the refresher ${functionName} failed (${answer.FunctionError}): ${message.slice(0, 500)}; its log group has the details`,
    );
  }
  const json = parseJson(text);
  const parsed = json.ok ? parseWith(OneClusterAnswer, json.value) : json;
  if (!parsed.ok)
    throw new AwsProblem(
      `the refresher ${functionName} answered what this CLI does not know (${parsed.error}): deploy the stack with this version`,
    );
  return parsed.value.report;
}
