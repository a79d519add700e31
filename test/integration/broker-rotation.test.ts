/**
 * The token broker's key rotation against moto's IAM and DynamoDB, through the rotation
 * function's own adapters (SigV4-signed IAM query calls, the token table's key item): the first
 * run creates and stores a key; a replaced key outlives the longest session made with it; IAM's
 * two-key limit is met by deleting before creating; a key that could not be stored is deleted;
 * the CloudFormation custom resource creates the first key and removes every key with the stack,
 * answering without the secret.
 */

import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { DynamoBrokerKeyStore } from "../../functions/adapters/broker-key-store.ts";
import { IamAccessKeys, IamQueryClient } from "../../functions/adapters/iam-access-keys.ts";
import {
  createBrokerRotation,
  createBrokerRotationFromEnv,
} from "../../functions/broker-rotation/broker-rotation.ts";
import {
  type RotationDependencies,
  rotateBrokerKey,
} from "../../functions/broker-rotation/rotation.ts";
import {
  BROKER_KEY_MAX_AGE_MS,
  type BrokerKeyStore,
  SUPERSEDED_KEY_GRACE_MS,
} from "../../functions/core/broker-key.ts";
import { createTokenTable } from "../../testbed/aws-env.ts";
import { restoreEnv } from "../support/env.ts";
import { type CapturedOutput, captureOutput } from "../support/output.ts";

const motoUrl = inject("motoUrl");
const HOUR = 3600_000;
const DAY = 24 * HOUR;
const credentials = { accessKeyId: "AKIAWEBHOOKTESTKEY01", secretAccessKey: "x" };
const iamOptions = { region: "us-east-1", endpoint: motoUrl, credentials: async () => credentials };
const iam = new IamQueryClient(iamOptions);
const keys = new IamAccessKeys(iamOptions);
const dynamo = new DynamoDBClient({ endpoint: motoUrl, region: "us-east-1", credentials });
const savedEnv = { ...process.env };
let users = 0;
let userName = "";
let table = "";
let store: DynamoBrokerKeyStore;
let output: CapturedOutput;

beforeAll(() => {
  output = captureOutput();
});

afterAll(() => {
  output.restore();
  restoreEnv(savedEnv);
});

beforeEach(async () => {
  // A user and table of its own per test: moto keeps both for the whole run.
  userName = `ecr-anywhere-token-broker-${++users}`;
  table = `broker-key-${users}`;
  await iam.call("CreateUser", { UserName: userName }, AbortSignal.timeout(5000));
  await createTokenTable(dynamo, table);
  store = new DynamoBrokerKeyStore(table, dynamo);
});

function rotation(clock: { now: number }, keyStore: BrokerKeyStore = store): RotationDependencies {
  return { keys, store: keyStore, userName, now: () => clock.now, log: () => undefined };
}

const signal = () => AbortSignal.timeout(10_000);
const listed = async () => (await keys.list(userName, signal())).map((key) => key.accessKeyId);

describe("broker key rotation", () => {
  it("creates and stores the first key, keeps it while young, and replaces it when due, deleting the old one only after the grace", async () => {
    // moto dates keys in real time; the clock starts there and moves on by itself.
    const clock = { now: Date.now() };
    expect(await rotateBrokerKey(rotation(clock), signal())).toEqual({ created: true, deleted: 0 });
    const first = await store.read(signal());
    expect(await listed()).toEqual([first?.accessKeyId]);
    expect(first?.secretAccessKey).toBeTruthy();

    clock.now += DAY;
    expect(await rotateBrokerKey(rotation(clock), signal())).toEqual({
      created: false,
      deleted: 0,
    });
    expect((await store.read(signal()))?.accessKeyId).toBe(first?.accessKeyId);

    clock.now += BROKER_KEY_MAX_AGE_MS; // 31 days in: due
    expect(await rotateBrokerKey(rotation(clock), signal())).toEqual({ created: true, deleted: 0 });
    const second = await store.read(signal());
    expect(second?.accessKeyId).not.toBe(first?.accessKeyId);
    expect((await listed()).sort()).toEqual([first?.accessKeyId, second?.accessKeyId].sort());

    // 36 h later a session made with the first key, just before every webhook read the new one,
    // may still be in use: the first key stays.
    clock.now += 36 * HOUR;
    expect(await rotateBrokerKey(rotation(clock), signal())).toEqual({
      created: false,
      deleted: 0,
    });
    expect(await listed()).toHaveLength(2);

    clock.now += SUPERSEDED_KEY_GRACE_MS - 36 * HOUR + 60_000;
    expect(await rotateBrokerKey(rotation(clock), signal())).toEqual({
      created: false,
      deleted: 1,
    });
    expect(await listed()).toEqual([second?.accessKeyId]);
  });

  it("makes room within IAM's two keys: a third rotation deletes the replaced key first", async () => {
    const clock = { now: Date.now() };
    await rotateBrokerKey(rotation(clock), signal());
    const first = (await store.read(signal()))?.accessKeyId;
    clock.now += BROKER_KEY_MAX_AGE_MS;
    await rotateBrokerKey(rotation(clock), signal());
    const second = (await store.read(signal()))?.accessKeyId;
    expect(await listed()).toHaveLength(2);
    // IAM (moto too) refuses a third key: creating before deleting would fail.
    await expect(keys.create(userName, signal())).rejects.toMatchObject({ code: "LimitExceeded" });

    clock.now += BROKER_KEY_MAX_AGE_MS;
    expect(await rotateBrokerKey(rotation(clock), signal())).toEqual({ created: true, deleted: 1 });
    const third = (await store.read(signal()))?.accessKeyId;
    expect((await listed()).sort()).toEqual([second, third].sort());
    expect(await listed()).not.toContain(first);
  });

  it("deletes a key it could not store, so no key exists that nothing stored", async () => {
    const clock = { now: Date.now() };
    const failing: BrokerKeyStore = {
      read: (s) => store.read(s),
      write: async () => {
        throw Object.assign(new Error("table unavailable"), { name: "InternalServerError" });
      },
    };
    await expect(rotateBrokerKey(rotation(clock, failing), signal())).rejects.toThrow(
      "table unavailable",
    );
    expect(await listed()).toEqual([]);
    expect(await store.read(signal())).toBeUndefined();
  });

  it("deletes a key a failed run left unstored, and keys that no item ever handed out", async () => {
    const clock = { now: Date.now() };
    const stray = await keys.create(userName, signal());
    await rotateBrokerKey(rotation(clock), signal());
    const stored = await store.read(signal());
    expect(await listed()).toEqual([stored?.accessKeyId]);
    expect(stored?.accessKeyId).not.toBe(stray.accessKeyId);
  });
});

interface CloudFormationAnswer {
  readonly Status: string;
  readonly Reason: string;
  readonly PhysicalResourceId: string;
  readonly NoEcho: boolean;
  readonly Data: Record<string, unknown>;
}

/** A stand-in for CloudFormation's pre-signed response URL: keeps what the function PUT there. */
async function responseUrl(): Promise<{ url: string; answers: string[]; stop(): Promise<void> }> {
  const answers: string[] = [];
  const server = createServer(async (request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    answers.push(Buffer.concat(chunks).toString("utf8"));
    response.writeHead(request.method === "PUT" ? 200 : 405).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/signed?X-Amz-Signature=x`,
    answers,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("the custom resource", () => {
  it("creates the first key with the stack, removes every key with it, and never answers with the key", async () => {
    const cloudFormation = await responseUrl();
    try {
      Object.assign(process.env, {
        AWS_REGION: "us-east-1",
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        AWS_ENDPOINT_URL_IAM: motoUrl,
        AWS_ENDPOINT_URL_DYNAMODB: motoUrl,
        ECR_ANYWHERE_TOKEN_TABLE: table,
        ECR_ANYWHERE_BROKER_USER: userName,
        POWERTOOLS_LOG_LEVEL: "INFO",
      });
      const handler = createBrokerRotationFromEnv(process.env);
      const event = {
        ResponseURL: cloudFormation.url,
        StackId: "arn:aws:cloudformation:us-east-1:123456789012:stack/EcrAnywhere/x",
        RequestId: "r-1",
        LogicalResourceId: "BrokerKey",
      };
      await handler({ ...event, RequestType: "Create" });
      const key = await store.read(signal());
      expect(await listed()).toEqual([key?.accessKeyId]);
      const created = JSON.parse(cloudFormation.answers[0] ?? "{}") as CloudFormationAnswer;
      expect(created).toMatchObject({
        Status: "SUCCESS",
        PhysicalResourceId: userName,
        NoEcho: true,
      });
      expect(created.Data).toEqual({});

      await handler({ ...event, RequestType: "Delete", PhysicalResourceId: userName });
      expect(await listed()).toEqual([]);
      expect(JSON.parse(cloudFormation.answers[1] ?? "{}")).toMatchObject({ Status: "SUCCESS" });

      // Neither the answers nor the logs hold the key: its id only by its last four characters.
      const everything = `${cloudFormation.answers.join("\n")}\n${output.text()}`;
      expect(everything).not.toContain(key?.secretAccessKey);
      expect(everything).not.toContain(key?.accessKeyId);
      expect(output.text()).toContain(`…${key?.accessKeyId.slice(-4)}`);
    } finally {
      await cloudFormation.stop();
      restoreEnv(savedEnv);
    }
  });

  it("answers FAILED with the reason when the key cannot be made, so the deployment stops", async () => {
    const cloudFormation = await responseUrl();
    try {
      const handler = createBrokerRotation(
        { ...rotation({ now: Date.now() }), userName: "no-such-user" },
        { retryWaitMs: 10 },
      );
      await handler({
        RequestType: "Create",
        ResponseURL: cloudFormation.url,
        StackId: "s",
        RequestId: "r-2",
        LogicalResourceId: "BrokerKey",
      });
      const answer = JSON.parse(cloudFormation.answers[0] ?? "{}") as CloudFormationAnswer;
      expect(answer.Status).toBe("FAILED");
      expect(answer.Reason).toMatch(/NoSuchEntity/);
    } finally {
      await cloudFormation.stop();
    }
  });
});
