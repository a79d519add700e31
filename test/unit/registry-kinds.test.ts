/**
 * The registry-kind extension point: a kind that is only a descriptor and a minter, registered in
 * the token provider's minters, is parsed, selected, minted (cache, single flight, assumed role,
 * error messages), written into a Secret through the webhook's pipeline, and granted in the
 * webhook role's IAM, with no other code knowing it. And the built-in kinds keep the keys and
 * statements that caches, the shared table and deployed stacks depend on.
 */
import type { ECRClient } from "@aws-sdk/client-ecr";
import type { STSClient } from "@aws-sdk/client-sts";
import { describe, expect, it } from "vitest";
import { EcrMinter } from "../../functions/adapters/ecr-minter.ts";
import { EcrPublicMinter } from "../../functions/adapters/ecr-public-minter.ts";
import {
  CredentialError,
  defaultTokenMinters,
  EcrTokenProvider,
} from "../../functions/adapters/ecr-tokens.ts";
import type { ClusterRecord } from "../../functions/core/cluster-record.ts";
import { webhookConfigFromEnv } from "../../functions/core/config.ts";
import { ECR } from "../../functions/core/ecr-kind.ts";
import { ECR_PUBLIC } from "../../functions/core/ecr-public-kind.ts";
import {
  endpointKey,
  parseRegistryHost,
  partitionOf,
  REGISTRY_KINDS,
  type RegistryKind,
  tokenEndpointsOf,
} from "../../functions/core/registries.ts";
import { sessionPolicyFor } from "../../functions/core/session-policy.ts";
import type { AwsCredentials, MintedToken, TokenMinter } from "../../functions/core/tokens.ts";
import {
  parseAllowedRegistries,
  registryRoleStatements,
} from "../../functions/core/webhook-role.ts";
import { createTelemetry } from "../../functions/telemetry.ts";
import { createWebhook } from "../../functions/webhook/webhook.ts";
import {
  admissionReview,
  applied,
  decodeDockerConfig,
  managedSecret,
  newWebhookToken,
  webhookEvent,
} from "../support/admission.ts";
import { captureOutput } from "../support/output.ts";

const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const EXAMPLE = "123456789012.registry.eu-west-1.example.com";
const HOUR = 3600_000;

/** A made-up registry kind: `<account>.registry.<region>.example.com`, in partition aws only. */
const EXAMPLE_KIND: RegistryKind = {
  id: "example",
  service: "Example Registry",
  tokenAction: "example:GetAuthorizationToken",
  tokenPermissions: "example:GetAuthorizationToken and example:Pull",
  hostPattern: "<account>.registry.<region>.example.com",
  partitions: ["aws"],
  parseHost(host) {
    const match = /^(\d{12})\.registry\.([a-z]{2}(?:-[a-z]+)+-\d)\.example\.com$/.exec(host);
    if (!match) return undefined;
    const [, accountId = "", region = ""] = match;
    if (region === "eu-south-9")
      return { ok: false, problem: `"${host}": Example Registry has no region ${region}` };
    return {
      ok: true,
      registry: {
        host,
        kind: "example",
        accountId,
        region,
        partition: partitionOf(region),
        fips: false,
        dualStack: false,
      },
    };
  },
  endpointOf: ({ region }) => ({ kind: "example", region, fips: false }),
  endpointKey: ({ region }) => `example|${region}`,
  crossPartitionProblem: ({ host }, stackPartition) =>
    `registry ${host} is not served in ${stackPartition}`,
  sessionStatements: () => [
    { Effect: "Allow", Action: ["example:GetAuthorizationToken", "example:Pull"], Resource: "*" },
  ],
  roleStatements: (registries) =>
    registries.length === 0
      ? { mint: [], pull: [] }
      : {
          mint: [
            {
              Sid: "MintExampleTokens",
              Effect: "Allow",
              Action: "example:GetAuthorizationToken",
              Resource: "*",
            },
          ],
          pull: [
            {
              Sid: "PullFromExampleRegistries",
              Effect: "Allow",
              Action: "example:Pull",
              Resource: registries.map(
                (registry) => `arn:aws:example:${registry.region}:${registry.accountId}:repo/*`,
              ),
            },
          ],
        },
};

/** Its minter: counts calls, answers after `latencyMs`, or fails with `failWith`. */
class ExampleMinter implements TokenMinter {
  readonly kind = EXAMPLE_KIND;
  calls: { region: string; credentials: AwsCredentials | undefined }[] = [];
  latencyMs = 20;
  failWith: unknown;

  async mint(
    endpoint: { region: string },
    credentials: AwsCredentials | undefined,
  ): Promise<MintedToken> {
    this.calls.push({ region: endpoint.region, credentials });
    await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    if (this.failWith !== undefined) throw this.failWith;
    const password = `example-${this.calls.length}`;
    return {
      authorizationToken: Buffer.from(`AWS:${password}`).toString("base64"),
      expiresAt: new Date(Date.now() + 12 * HOUR),
    };
  }
}

/** An ECR client that answers GetAuthorizationToken, for the private registry next to it. */
function ecrStub(): ECRClient {
  return {
    send: async () => ({
      authorizationData: [
        {
          authorizationToken: Buffer.from("AWS:ecr-password").toString("base64"),
          expiresAt: new Date(Date.now() + 12 * HOUR),
        },
      ],
    }),
    destroy: () => undefined,
  } as unknown as ECRClient;
}

/** STS that records the session policy of every AssumeRole. */
function stsStub(policies: (string | undefined)[]): STSClient {
  return {
    send: async (command: { input: { Policy?: string } }) => {
      policies.push(command.input.Policy);
      return {
        Credentials: {
          AccessKeyId: "ASIAEXAMPLE",
          SecretAccessKey: "secret",
          SessionToken: "session",
          Expiration: new Date(Date.now() + HOUR),
        },
      };
    },
  } as unknown as STSClient;
}

function setup() {
  const example = new ExampleMinter();
  const policies: (string | undefined)[] = [];
  const provider = new EcrTokenProvider({
    sts: stsStub(policies),
    now: Date.now,
    minters: [new EcrMinter(ecrStub), new EcrPublicMinter(), example],
  });
  return { example, policies, provider, kinds: provider.kinds };
}

describe("a registry kind added with only a descriptor and a minter", () => {
  it("parses its hosts once registered, and is refused by name where it is not", () => {
    const { kinds } = setup();
    expect(parseRegistryHost(EXAMPLE, kinds)).toMatchObject({
      ok: true,
      registry: { kind: "example", region: "eu-west-1", accountId: "123456789012" },
    });
    expect(parseRegistryHost("123456789012.registry.eu-south-9.example.com", kinds)).toEqual({
      ok: false,
      problem:
        '"123456789012.registry.eu-south-9.example.com": Example Registry has no region eu-south-9',
    });
    expect(parseRegistryHost("docker.io", kinds)).toEqual({
      ok: false,
      problem:
        '"docker.io" is not an ECR registry host (expected <account>.dkr.ecr.<region>.amazonaws.com or public.ecr.aws or <account>.registry.<region>.example.com, lower case, without scheme, port or path)',
    });
    // The built-in kinds alone do not know it.
    expect(parseRegistryHost(EXAMPLE).ok).toBe(false);
  });

  it("mints through the provider: one call for concurrent misses, then the cache", async () => {
    const { example, provider, kinds } = setup();
    const registry = parseRegistryHost(EXAMPLE, kinds);
    if (!registry.ok) throw new Error(registry.problem);
    const [endpoint] = tokenEndpointsOf([registry.registry], kinds);
    if (!endpoint) throw new Error("no endpoint");
    expect(endpointKey(endpoint, kinds)).toBe("example|eu-west-1");
    const requester = { clusterId: "gke-prod", registries: [EXAMPLE] };
    const signal = AbortSignal.timeout(5000);
    const first = await Promise.all(
      Array.from({ length: 10 }, () => provider.tokenFor(requester, endpoint, signal)),
    );
    expect(example.calls).toHaveLength(1);
    expect(first.map((answer) => answer.source).sort()).toEqual([
      "loaded",
      ...Array(9).fill("shared"),
    ]);
    expect(first[0]?.token).toMatchObject({
      kind: "example",
      region: "eu-west-1",
      username: "AWS",
      password: "example-1",
    });
    const again = await provider.tokenFor(requester, endpoint, signal);
    expect(again).toMatchObject({ source: "cache", token: { password: "example-1" } });
    expect(example.calls).toHaveLength(1);
  });

  it("mints with the cluster's role, its session policy carrying the kind's statements", async () => {
    const { example, policies, provider, kinds } = setup();
    const requester = {
      clusterId: "gke-prod",
      roleArn: "arn:aws:iam::123456789012:role/ecr-pull",
      repositories: ["arn:aws:ecr:us-east-1:123456789012:repository/team-a/*"],
      registries: [EAST, EXAMPLE],
    };
    const [endpoint] = tokenEndpointsOf(
      [EXAMPLE].flatMap((host) => {
        const parsed = parseRegistryHost(host, kinds);
        return parsed.ok ? [parsed.registry] : [];
      }),
      kinds,
    );
    if (!endpoint) throw new Error("no endpoint");
    await provider.tokenFor(requester, endpoint, AbortSignal.timeout(5000));
    expect(example.calls[0]?.credentials?.accessKeyId).toBe("ASIAEXAMPLE");
    const statements = JSON.parse(policies[0] ?? "{}").Statement;
    expect(statements.map((statement: { Action: unknown }) => statement.Action)).toEqual([
      "ecr:GetAuthorizationToken",
      ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
      ["example:GetAuthorizationToken", "example:Pull"],
    ]);
  });

  it("explains its failures in its own words", async () => {
    const { example, provider, kinds } = setup();
    example.failWith = Object.assign(new Error("not allowed"), { name: "AccessDeniedException" });
    const endpoint = { kind: "example", region: "eu-west-1", fips: false };
    const failure = provider.tokenFor(
      { clusterId: "gke-prod", registries: [EXAMPLE] },
      endpoint,
      AbortSignal.timeout(5000),
    );
    await expect(failure).rejects.toBeInstanceOf(CredentialError);
    await expect(failure).rejects.toThrow(
      "AWS denied example:GetAuthorizationToken in eu-west-1 (AccessDeniedException): not allowed Check that the IAM policy of the role that mints tokens for this cluster allows example:GetAuthorizationToken and example:Pull.",
    );
    example.failWith = Object.assign(new Error("slow down"), { name: "ThrottlingException" });
    await expect(
      provider.tokenFor(
        { clusterId: "other", registries: [EXAMPLE] },
        endpoint,
        AbortSignal.timeout(5000),
      ),
    ).rejects.toThrow(
      "Example Registry is throttling GetAuthorizationToken in eu-west-1; try again shortly (if it persists, raise the Example Registry quota or reduce how often Secrets are written)",
    );
    expect(kinds.map((kind) => kind.id)).toEqual(["ecr", "ecr-public", "example"]);
  });

  it("gets its Secret written through the webhook's pipeline, next to an ECR registry", async () => {
    const { example, provider } = setup();
    const caller = newWebhookToken();
    const record = {
      clusterId: "gke-prod",
      kubeconfig: "apiVersion: v1\nkind: Config\n",
      webhookTokenSha256: [caller.sha256],
      registries: [EAST, EXAMPLE],
    } as ClusterRecord;
    const output = captureOutput();
    try {
      const webhook = createWebhook({
        config: webhookConfigFromEnv({}),
        now: Date.now,
        telemetry: createTelemetry("ecr-anywhere-webhook"),
        records: {
          lookup: async () => ({ value: { found: true, record }, source: "cache" }),
          isKnown: () => true,
        },
        tokens: provider,
      });
      const object = managedSecret();
      const result = await webhook(
        webhookEvent({
          clusterId: "gke-prod",
          token: caller.token,
          body: admissionReview({ object }),
        }),
        { awsRequestId: "r-1" },
      );
      const { response } = JSON.parse(String(result.body));
      expect(response.allowed).toBe(true);
      const auths = decodeDockerConfig(applied(object, response).data?.[".dockerconfigjson"]).auths;
      expect(auths[EXAMPLE]?.password).toBe("example-1");
      expect(auths[EAST]?.password).toBe("ecr-password");
      expect(example.calls).toHaveLength(1);
      expect(output.text()).not.toContain("example-1");
    } finally {
      output.restore();
    }
  });

  it("adds its statements to the webhook role, after every kind's mint statements", () => {
    const { kinds } = setup();
    const registries = parseAllowedRegistries(
      [EXAMPLE, EAST, "public.ecr.aws"],
      "us-east-1",
      kinds,
    );
    const statements = registryRoleStatements(registries, { pullThroughCache: false }, kinds);
    expect(statements.map((statement) => statement.Sid)).toEqual([
      "MintEcrTokens",
      "MintEcrPublicTokens",
      "EcrPublicBearerToken",
      "MintExampleTokens",
      "PullFromAllowedRegistries",
      "PullFromExampleRegistries",
    ]);
    expect(statements.at(-1)?.Resource).toEqual(["arn:aws:example:eu-west-1:123456789012:repo/*"]);
    // Without it among the allowed registries, it grants nothing.
    expect(
      registryRoleStatements(
        parseAllowedRegistries([EAST], undefined, kinds),
        { pullThroughCache: false },
        kinds,
      ).map((statement) => statement.Sid),
    ).toEqual(["MintEcrTokens", "PullFromAllowedRegistries"]);
    // Its partitions are checked like ECR Public's.
    expect(() => parseAllowedRegistries([EXAMPLE], "cn-north-1", kinds)).toThrow(
      `allowedRegistries: ${EXAMPLE} exists only in partition aws; this stack is in cn-north-1`,
    );
  });
});

describe("the built-in kinds", () => {
  it("are the kinds the default minters mint", () => {
    expect(defaultTokenMinters().map((minter) => minter.kind)).toEqual(REGISTRY_KINDS);
  });

  it("keep the endpoint keys the caches and the shared token table are keyed by", () => {
    const keys = [
      EAST,
      "123456789012.dkr-ecr.us-east-1.on.aws",
      "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
      "public.ecr.aws",
    ].map((host) => {
      const parsed = parseRegistryHost(host);
      if (!parsed.ok) throw new Error(parsed.problem);
      return tokenEndpointsOf([parsed.registry]).map((endpoint) => endpointKey(endpoint));
    });
    expect(keys).toEqual([["us-east-1"], ["us-east-1"], ["us-east-1|fips"], ["public|us-east-1"]]);
  });

  it("keep the session policy's text, whose hash keys an assumed role's tokens", () => {
    const repositories = ["arn:aws:ecr:us-east-1:123456789012:repository/team-a/*"];
    const publicRegistry = parseRegistryHost("public.ecr.aws");
    if (!publicRegistry.ok) throw new Error(publicRegistry.problem);
    const scope = { registries: [publicRegistry.registry], repositories, pullThroughCache: true };
    expect(sessionPolicyFor(scope, [ECR, ECR_PUBLIC])).toBe(
      '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"},{"Effect":"Allow","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability","ecr:BatchImportUpstreamImage","ecr:CreateRepository"],"Resource":["arn:aws:ecr:us-east-1:123456789012:repository/team-a/*"]},{"Effect":"Allow","Action":"ecr-public:GetAuthorizationToken","Resource":"*"},{"Effect":"Allow","Action":"sts:GetServiceBearerToken","Resource":"*","Condition":{"StringEquals":{"sts:AWSServiceName":"ecr-public.amazonaws.com"}}}]}',
    );
  });
});
