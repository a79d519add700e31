/**
 * FIPS registries get their token from the region's FIPS endpoint, through the real SDK: the
 * webhook asks for one token per (region, FIPS), the default client is configured for the FIPS
 * endpoint, and an admission fills a FIPS host and an ordinary one from different tokens.
 */

import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ECRClient } from "@aws-sdk/client-ecr";
import { STSClient } from "@aws-sdk/client-sts";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ClusterRecordStore } from "../../functions/adapters/cluster-records.ts";
import { EcrMinter, ecrClientFor } from "../../functions/adapters/ecr-minter.ts";
import { EcrPublicMinter } from "../../functions/adapters/ecr-public-minter.ts";
import { EcrTokenProvider } from "../../functions/adapters/ecr-tokens.ts";
import { webhookConfigFromEnv } from "../../functions/core/config.ts";
import { createTelemetry } from "../../functions/telemetry.ts";
import { createWebhook, createWebhookFromEnv } from "../../functions/webhook/webhook.ts";
import { localAwsEnv, putClusterRecord } from "../../testbed/aws-env.ts";
import { type EcrStandIn, startEcrStandIn } from "../../testbed/ecr-stand-in.ts";
import {
  admissionReview,
  applied,
  decodeDockerConfig,
  managedSecret,
  newWebhookToken,
  webhookEvent,
} from "../support/admission.ts";
import { restoreEnv } from "../support/env.ts";
import { captureOutput } from "../support/output.ts";

const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const EAST_FIPS = "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com";
const EAST_DUAL_STACK = "123456789012.dkr-ecr.us-east-1.on.aws";
const motoUrl = inject("motoUrl");
const savedEnv = { ...process.env };
const token = newWebhookToken();
let ecr: EcrStandIn;

beforeAll(async () => {
  ecr = await startEcrStandIn();
  Object.assign(process.env, localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: ecr.url }), {
    POWERTOOLS_LOG_LEVEL: "SILENT",
  });
  await putClusterRecord(motoUrl, {
    clusterId: "fips",
    kubeconfig: "apiVersion: v1\nkind: Config\n",
    webhookTokenSha256: [token.sha256],
    registries: [EAST, EAST_FIPS, EAST_DUAL_STACK],
  });
});

describe("partitions", () => {
  it("refuses a record naming a registry of another partition, and logs why", async () => {
    const chinaToken = newWebhookToken();
    await putClusterRecord(motoUrl, {
      clusterId: "china",
      kubeconfig: "apiVersion: v1\nkind: Config\n",
      webhookTokenSha256: [chinaToken.sha256],
      registries: ["123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"],
    });
    const output = captureOutput();
    // This file keeps logs quiet; here the error line is what is asserted.
    process.env.POWERTOOLS_LOG_LEVEL = "ERROR";
    try {
      // The stack runs in us-east-1 (AWS_REGION), partition aws.
      const webhook = createWebhookFromEnv(process.env, {
        telemetry: createTelemetry("ecr-anywhere-webhook"),
      });
      const result = await webhook(
        webhookEvent({ clusterId: "china", token: chinaToken.token, body: admissionReview() }),
        { awsRequestId: "r" },
      );
      expect(result.statusCode).toBe(403);
      expect(output.text()).toMatch(/is in partition aws-cn, but this stack runs in aws/);
    } finally {
      output.restore();
      process.env.POWERTOOLS_LOG_LEVEL = "SILENT";
    }
  });
});

afterAll(async () => {
  await ecr.stop();
  restoreEnv(savedEnv);
});

describe("FIPS registries", () => {
  it("configures the default ECR client for the region's FIPS endpoint", async () => {
    const fips = ecrClientFor("us-east-1", undefined, true);
    const ordinary = ecrClientFor("us-east-1", undefined, false);
    expect(await fips.config.useFipsEndpoint()).toBe(true);
    expect(await ordinary.config.useFipsEndpoint()).toBe(false);
    const resolved = fips.config.endpointProvider({
      Region: "us-east-1",
      UseFIPS: true,
      UseDualStack: false,
    });
    // The SDK's endpoint rules name ECR's FIPS API endpoint.
    expect(resolved.url.hostname).toBe("api.ecr-fips.us-east-1.amazonaws.com");
    fips.destroy();
    ordinary.destroy();
  });

  it("fills a FIPS host from a FIPS-endpoint token and the others from the ordinary one", async () => {
    const created: { region: string; fips: boolean }[] = [];
    const now = Date.now;
    const config = webhookConfigFromEnv(process.env);
    const webhook = createWebhook({
      config,
      now,
      telemetry: createTelemetry("ecr-anywhere-webhook"),
      records: new ClusterRecordStore({
        client: new DynamoDBClient({}),
        table: config.webhookRecordTable,
        ttlMs: config.recordTtlMs,
        now,
      }),
      tokens: new EcrTokenProvider({
        sts: new STSClient({}),
        now,
        minters: [
          // The stand-in answers for both endpoints; what matters is which one was asked for.
          new EcrMinter((region, credentials, fips) => {
            created.push({ region, fips });
            return new ECRClient({
              region,
              endpoint: ecr.url,
              ...(credentials ? { credentials } : {}),
            });
          }),
          new EcrPublicMinter(),
        ],
      }),
    });
    const object = managedSecret();
    const result = await webhook(
      webhookEvent({ clusterId: "fips", token: token.token, body: admissionReview({ object }) }),
      { awsRequestId: "r" },
    );
    const response = (
      JSON.parse(String(result.body)) as { response: { allowed: boolean; patch?: string } }
    ).response;
    expect(response.allowed).toBe(true);
    expect(created.sort((a, b) => Number(a.fips) - Number(b.fips))).toEqual([
      { region: "us-east-1", fips: false },
      { region: "us-east-1", fips: true },
    ]);
    expect(ecr.callsIn("us-east-1")).toBe(2);
    const stored = applied(object, response);
    const auths = decodeDockerConfig(stored.data?.[".dockerconfigjson"]).auths;
    expect(Object.keys(auths).sort()).toEqual([EAST_DUAL_STACK, EAST, EAST_FIPS].sort());
    // The dual-stack host shares the ordinary token; the FIPS host has its own.
    expect(auths[EAST_DUAL_STACK]?.password).toBe(auths[EAST]?.password);
    expect(auths[EAST_FIPS]?.password).not.toBe(auths[EAST]?.password);
  });
});
