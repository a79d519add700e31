/**
 * The CLI's commands run in-process with stand-ins from the factory: flags completed and
 * validated, global flags reaching the adapters, `--dry-run` as a target of the same onboard run,
 * and one record prefix for every command.
 */
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { OnboardOptions } from "../../cli/commands/onboard/target.ts";
import { validateOnboard } from "../../cli/commands/onboard.ts";
import { InputError } from "../../cli/core/inputs.ts";
import type { Factory, GlobalFlags, OperatorCluster, Records } from "../../cli/factory.ts";
import { buildProgram } from "../../cli/program.ts";
import { printerFor } from "../../cli/ui.ts";
import { contractNames, DEFAULT_CLUSTER_RECORD_PREFIX } from "../../functions/core/contract.ts";

const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const CA_DATA = Buffer.from("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n").toString(
  "base64",
);

/** Any call to an adapter the test did not hand in fails the test. */
function untouchable<T extends object>(what: string): T {
  return new Proxy({} as T, {
    get: (_, property) => {
      if (property === "then") return undefined;
      throw new Error(`${what}.${String(property)} was called`);
    },
  });
}

interface Harness {
  readonly stdout: string[];
  readonly globals: GlobalFlags[];
  run(...args: string[]): Promise<void>;
}

function harness(overrides: (globals: GlobalFlags) => Partial<Factory> = () => ({})): Harness {
  const stdout: string[] = [];
  const globals: GlobalFlags[] = [];
  const program = buildProgram((flags) => {
    globals.push(flags);
    const labelPrefix = flags.labelPrefix ?? "ecr-anywhere.centml.ai";
    return {
      output: flags.output,
      labelPrefix,
      recordPrefix: flags.recordPrefix ?? DEFAULT_CLUSTER_RECORD_PREFIX,
      names: contractNames(labelPrefix),
      printer: printerFor(flags.output, { stdout: { write: (text) => stdout.push(text) } }),
      operatorCluster: () => untouchable<OperatorCluster>("operatorCluster"),
      records: () => untouchable<Records>("records"),
      stackOutputs: () => Promise.reject(new Error("stackOutputs was called")),
      recordCluster: () => {
        throw new Error("recordCluster was called");
      },
      confirm: () => Promise.reject(new Error("confirm was called")),
      sleep: () => Promise.resolve(),
      ...overrides(flags),
    };
  });
  return {
    stdout,
    globals,
    run: async (...args) => {
      await program.parseAsync(["node", "ecr-anywhere", ...args]);
    },
  };
}

/** The operator's cluster as far as a dry run reads it: its address and CA, nothing else. */
const dryRunCluster = (): OperatorCluster =>
  new Proxy({ server: "https://api.example.com:6443", caData: () => CA_DATA } as OperatorCluster, {
    get: (target, property) => {
      if (property in target) return target[property as keyof OperatorCluster];
      if (property === "then") return undefined;
      throw new Error(`a dry run called the cluster's ${String(property)}`);
    },
  });

const dryRunArgs = [
  "onboard",
  "gitops",
  "--registries",
  EAST,
  "--namespaces",
  "apps",
  "--webhook-url",
  "https://abc.lambda-url.us-east-1.on.aws/",
  "--record-key-arn",
  KEY_ARN,
  "--allowed-source-cidrs",
  "203.0.113.0/24",
  "--dry-run",
];

afterEach(() => {
  process.exitCode = undefined;
});

describe("global flags", () => {
  it("reach the factory with every command", async () => {
    const cli = harness(() => ({
      records: () =>
        ({ clusterIds: async () => ["a"], read: async () => undefined, close() {} }) as never,
    }));
    await cli.run("--region", "eu-west-1", "--profile", "ops", "-o", "json", "status");
    expect(cli.globals).toEqual([
      expect.objectContaining({ region: "eu-west-1", profile: "ops", output: "json" }),
    ]);
  });
});

describe("onboard --dry-run", () => {
  it("is the same run with a files target: it reads the kubeconfig only, and calls neither the cluster nor AWS", async () => {
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    await cli.run("-o", "json", ...dryRunArgs);
    const result = JSON.parse(cli.stdout.join("")) as {
      dryRun: boolean;
      manifests: { kind: string; webhooks?: { clientConfig: { url: string } }[] }[];
      record: { clusterId: string; kubeconfig: string; webhookTokenSha256: string[] };
      recordName: string;
      webhookToken: string;
    };
    expect(result.dryRun).toBe(true);
    expect(result.recordName).toBe(`${DEFAULT_CLUSTER_RECORD_PREFIX}gitops`);
    const webhook = result.manifests.find((item) => item.kind === "MutatingWebhookConfiguration");
    expect(webhook?.webhooks?.[0]?.clientConfig.url).toBe(
      `https://abc.lambda-url.us-east-1.on.aws/v1/clusters/gitops/${result.webhookToken}`,
    );
    const kubeconfig = parse(result.record.kubeconfig) as {
      clusters: { cluster: { server: string } }[];
      users: { user: { token: string } }[];
    };
    expect(kubeconfig.clusters[0]?.cluster.server).toBe("https://api.example.com:6443");
    expect(kubeconfig.users[0]?.user.token).toBe("REPLACE-WITH-REFRESHER-TOKEN");
    expect(result.manifests.at(-1)).toMatchObject({
      kind: "Namespace",
      metadata: { name: "apps" },
    });
  });

  it("with header authentication keeps the token out of the manifests", async () => {
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    await cli.run("-o", "json", ...dryRunArgs, "--webhook-auth", "header");
    const result = JSON.parse(cli.stdout.join("")) as {
      manifests: unknown[];
      webhookToken: string;
      apiServerFiles: Record<string, string>;
    };
    expect(JSON.stringify(result.manifests)).not.toContain(result.webhookToken);
    expect(result.apiServerFiles["webhook-credentials.kubeconfig"]).toContain(result.webhookToken);
  });
});

describe("record prefix", () => {
  it("is the same default in every command, and onboard refuses a stack that reads elsewhere", async () => {
    const cli = harness(() => ({
      operatorCluster: dryRunCluster,
      stackOutputs: async () => ({
        webhookUrl: "https://abc.lambda-url.us-east-1.on.aws/",
        recordPrefix: "team-a/clusters/",
        recordKeyArn: KEY_ARN,
      }),
    }));
    const withStack = dryRunArgs.filter(
      (arg, index, all) =>
        ![arg, all[index - 1]].some(
          (item) => item === "--webhook-url" || item === "--record-key-arn",
        ),
    );
    await expect(cli.run(...withStack)).rejects.toThrow(
      /--record-prefix: stack EcrAnywhere reads cluster records under team-a\/clusters\/, not ecr-anywhere\/clusters\/; pass --record-prefix team-a\/clusters\//,
    );
    await cli.run("-o", "json", "--record-prefix", "team-a/clusters/", ...withStack);
    expect(JSON.parse(cli.stdout.join(""))).toMatchObject({
      recordName: "team-a/clusters/gitops",
    });
  });
});

describe("status", () => {
  it("reads every record through the factory and exits 1 when a cluster has a problem", async () => {
    const cli = harness(() => ({
      records: () =>
        ({
          clusterIds: async () => ["gone", "broken"],
          read: async (id: string) =>
            id === "gone"
              ? undefined
              : { record: undefined, invalid: "not JSON", kmsKeyId: KEY_ARN, deleted: false },
          close() {},
        }) as never,
    }));
    await cli.run("-o", "json", "status");
    const result = JSON.parse(cli.stdout.join("")) as {
      ok: boolean;
      clusters: { clusterId: string; problems: string[] }[];
    };
    expect(result.ok).toBe(false);
    expect(result.clusters).toEqual([
      expect.objectContaining({ clusterId: "gone", problems: ["no cluster record"] }),
      expect.objectContaining({ clusterId: "broken", problems: ["invalid record: not JSON"] }),
    ]);
    expect(process.exitCode).toBe(1);
  });
});

describe("onboard's rules between flags", () => {
  const valid: OnboardOptions = {
    clusterId: "c",
    registries: [EAST],
    namespaces: ["apps"],
    allowedSourceCidrs: ["203.0.113.0/24"],
    allowAnySource: false,
    aws: { stack: "EcrAnywhere" },
    rotateToken: false,
    replaceExisting: false,
    dryRun: false,
    webhookAuth: "url",
    admissionKubeconfigPath: "/etc/x",
    verifyTimeoutSeconds: 90,
  };
  it.each<[Partial<OnboardOptions>, RegExp]>([
    [{ serviceAccounts: ["default"] }, /--service-accounts needs --ensure-secret/],
    [{ pullThroughCache: true }, /--pull-through-cache needs --repositories/],
    [{ allowAnySource: true }, /exclude each other/],
    [{ allowedSourceCidrs: undefined }, /--allowed-source-cidrs is needed/],
    [{ out: "dir" }, /--out goes with --dry-run/],
    [{ webhookAuth: "header" }, /--webhook-auth header needs --dry-run/],
  ])("%j is refused", (change, message) => {
    expect(() => validateOnboard({ ...valid, ...change })).toThrow(InputError);
    expect(() => validateOnboard({ ...valid, ...change })).toThrow(message);
  });
  it("accepts a consistent set", () => {
    expect(() => validateOnboard(valid)).not.toThrow();
    // Tokens are scoped to the record with or without a role of the cluster's own.
    const repositories = ["arn:aws:ecr:us-east-1:123456789012:repository/a/*"];
    expect(() => validateOnboard({ ...valid, repositories, pullThroughCache: true })).not.toThrow();
    expect(() =>
      validateOnboard({ ...valid, dryRun: true, webhookAuth: "header", out: "dir" }),
    ).not.toThrow();
  });
});

describe("onboard into a cluster", () => {
  it("keeps the refresher's own state in the record when it re-writes it", async () => {
    const written: unknown[] = [];
    const existingRecord = {
      version: 1,
      clusterId: "c",
      kubeconfig: "k",
      webhookTokenSha256: ["a".repeat(64)],
      registries: [EAST],
      refresher: { openFailures: ["uid-1"] },
    };
    const cli = harness(() => ({
      operatorCluster: () =>
        ({
          server: "https://api.example.com:6443",
          caData: () => CA_DATA,
          deniedAccess: async () => [],
          missingNamespaces: async () => [],
          webhookConfigurations: async () => [],
          apply: async () => "created",
          requestToken: async () => "refresher-token-that-is-long-enough",
          dryRunManagedSecret: async () => {
            throw new Error("stop here: the record is written before verification");
          },
        }) as unknown as OperatorCluster,
      records: () =>
        ({
          problems: async () => [],
          read: async () => ({ record: existingRecord, kmsKeyId: KEY_ARN, deleted: false }),
          write: async (record: unknown) => {
            written.push(record);
            return "updated";
          },
          nameOf: (id: string) => `ecr-anywhere/clusters/${id}`,
          close() {},
        }) as unknown as Records,
    }));
    const args = dryRunArgs.filter((arg) => arg !== "--dry-run");
    await expect(cli.run("-o", "json", ...args, "--verify-timeout", "1")).rejects.toThrow(
      /stop here/,
    );
    expect(written).toEqual([
      expect.objectContaining({ clusterId: "gitops", refresher: { openFailures: ["uid-1"] } }),
    ]);
  });
});
