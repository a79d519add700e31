/**
 * The broker key rotation function: on its daily schedule it rotates (rotation.ts); as the stack's
 * CloudFormation custom resource it makes the first key when the stack is created (so clusters
 * are served from the first deployment on, not from the first scheduled run) and deletes every key
 * when the stack is deleted (IAM refuses to delete a user that has keys). The custom resource's
 * answer never carries the key: the key goes only into the token table.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import * as v from "valibot";
import { DynamoBrokerKeyStore } from "../adapters/broker-key-store.ts";
import { IamAccessKeys } from "../adapters/iam-access-keys.ts";
import { ENV, settingsFrom } from "../core/config.ts";
import { createTelemetry } from "../telemetry.ts";
import { type RotationDependencies, removeBrokerKeys, rotateBrokerKey } from "./rotation.ts";

/** What CloudFormation sends a custom resource (the fields this one reads). */
export interface CustomResourceEvent {
  readonly RequestType: "Create" | "Update" | "Delete";
  readonly ResponseURL: string;
  readonly StackId: string;
  readonly RequestId: string;
  readonly LogicalResourceId: string;
  readonly PhysicalResourceId?: string;
}

export type RotationEvent = CustomResourceEvent | { readonly source?: string };

function isCustomResourceEvent(event: RotationEvent): event is CustomResourceEvent {
  const candidate = event as Partial<CustomResourceEvent>;
  return typeof candidate.RequestType === "string" && typeof candidate.ResponseURL === "string";
}

/**
 * IAM is eventually consistent: the user and this function's grants are created in the same
 * deployment, and may be refused for a few seconds. Retried that long, only when the stack is
 * being created or updated.
 */
const PROPAGATION_RETRIES = 12;
const PROPAGATION_WAIT_MS = 10_000;
const NOT_YET = new Set(["AccessDenied", "AccessDeniedException", "NoSuchEntity"]);

export interface RotationHandlerOptions {
  readonly retryWaitMs?: number;
  /** Each run's deadline for its AWS calls. */
  readonly deadlineMs?: number;
}

export function createBrokerRotation(
  deps: RotationDependencies,
  options: RotationHandlerOptions = {},
): (event: RotationEvent) => Promise<void> {
  const deadlineMs = options.deadlineMs ?? 60_000;
  const run = () => rotateBrokerKey(deps, AbortSignal.timeout(deadlineMs));
  return async (event) => {
    if (!isCustomResourceEvent(event)) {
      await run();
      return;
    }
    try {
      if (event.RequestType === "Delete") {
        await removeBrokerKeys(deps, AbortSignal.timeout(deadlineMs));
      } else {
        await untilPropagated(run, options.retryWaitMs ?? PROPAGATION_WAIT_MS, deps.log);
      }
      await answerCloudFormation(event, deps.userName, "SUCCESS", "");
    } catch (error) {
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : "unknown error";
      deps.log("broker key rotation failed", { requestType: event.RequestType, error: reason });
      await answerCloudFormation(event, deps.userName, "FAILED", reason.slice(0, 500));
    }
  };
}

async function untilPropagated<T>(
  run: () => Promise<T>,
  waitMs: number,
  log: RotationDependencies["log"],
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      const name = (error as Error).name;
      if (!NOT_YET.has(name) || attempt >= PROPAGATION_RETRIES) throw error;
      log("waiting for IAM to propagate", { attempt, error: name });
      await sleep(waitMs);
    }
  }
}

/**
 * The custom resource's answer, PUT to the pre-signed URL CloudFormation gave. The user name is
 * the physical id: a new user is a new resource, and CloudFormation deletes the old one's keys.
 */
async function answerCloudFormation(
  event: CustomResourceEvent,
  userName: string,
  status: "SUCCESS" | "FAILED",
  reason: string,
): Promise<void> {
  const body = JSON.stringify({
    Status: status,
    Reason: reason || status,
    PhysicalResourceId: event.PhysicalResourceId ?? userName,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
    NoEcho: true,
    Data: {},
  });
  const answer = await fetch(event.ResponseURL, {
    method: "PUT",
    // The pre-signed URL is signed for an empty content type.
    headers: { "content-type": "" },
    body,
  });
  if (!answer.ok) throw new Error(`CloudFormation's response URL answered ${answer.status}`);
}

/** Its settings (names from core/config.ts): the token table and the broker user. */
const RotationEnvSchema = v.object({
  [ENV.tokenTable]: v.pipe(v.string(), v.nonEmpty()),
  [ENV.brokerUser]: v.pipe(v.string(), v.regex(/^[\w+=,.@-]{1,64}$/, "an IAM user name")),
});

/** The production wiring: IAM and DynamoDB with the function's own credentials and region. */
export function createBrokerRotationFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): (event: RotationEvent) => Promise<void> {
  const settings = settingsFrom(RotationEnvSchema, env, "broker key rotation");
  const { logger } = createTelemetry("ecr-anywhere-broker-rotation");
  return createBrokerRotation({
    keys: new IamAccessKeys({
      region: env.AWS_REGION ?? "us-east-1",
      endpoint: env.AWS_ENDPOINT_URL_IAM,
    }),
    store: new DynamoBrokerKeyStore(settings[ENV.tokenTable], new DynamoDBClient({})),
    userName: settings[ENV.brokerUser],
    now: Date.now,
    log: (message, details) => logger.info(message, { ...details }),
  });
}
