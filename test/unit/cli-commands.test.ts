/**
 * The CLI's commands run in-process with stand-ins from the factory: flags completed and
 * validated, global flags reaching the adapters, `--dry-run` as a target of the same onboard run,
 * and one records name for every command.
 */
import { createHash } from "node:crypto";
import { chmod, lstat, mkdir, mkdtemp, readFile, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { resolveEndpoints } from "../../cli/commands/onboard/endpoints.ts";
import type { OnboardOptions } from "../../cli/commands/onboard/target.ts";
import { validateOnboard } from "../../cli/commands/onboard.ts";
import { InputError, parseCidrs } from "../../cli/core/inputs.ts";
import { refresherKubeconfig } from "../../cli/core/onboard-plan.ts";
import type { Factory, GlobalFlags, OperatorCluster, Records } from "../../cli/factory.ts";
import { buildProgram } from "../../cli/program.ts";
import { printerFor, StepFailure } from "../../cli/ui.ts";
import { contractNames, DEFAULT_RECORDS_NAME } from "../../functions/core/contract.ts";

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
      records: flags.records ?? DEFAULT_RECORDS_NAME,
      names: contractNames(labelPrefix),
      localTestBed: false,
      printer: printerFor(flags.output, { stdout: { write: (text) => stdout.push(text) } }),
      operatorCluster: () => untouchable<OperatorCluster>("operatorCluster"),
      recordStore: () => untouchable<Records>("recordStore"),
      stackOutputs: () => Promise.reject(new Error("stackOutputs was called")),
      awsAccount: () => untouchable("awsAccount"),
      refreshOneCluster: () => Promise.reject(new Error("refreshOneCluster was called")),
      webhookHealth: () => Promise.reject(new Error("webhookHealth was called")),
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
  "--allowed-registries",
  EAST,
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
      recordStore: () =>
        ({
          clusterIds: async () => ["a"],
          readRefresherPart: async () => undefined,
          close() {},
        }) as never,
    }));
    await cli.run("--region", "eu-west-1", "--profile", "ops", "-o", "json", "status");
    expect(cli.globals).toEqual([
      expect.objectContaining({ region: "eu-west-1", profile: "ops", output: "json" }),
    ]);
  });
});

interface DryRunJson {
  dryRun: boolean;
  manifests: Record<
    string,
    {
      kind: string;
      metadata: {
        name: string;
        labels?: Record<string, string>;
        annotations?: Record<string, string>;
      };
      webhooks?: { clientConfig: { url: string } }[];
    }[]
  >;
  records: {
    webhook: { clusterId: string; webhookTokenSha256: string[] } & Record<string, unknown>;
    refresher: { clusterId: string; kubeconfig: string };
  };
  tables: { webhook: string; refresher: string };
  webhookToken?: string;
  apiServerFiles: Record<string, string>;
}

describe("onboard --dry-run", () => {
  it("is the same run with a files target: it reads the kubeconfig only, and calls neither the cluster nor AWS", async () => {
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    await cli.run("-o", "json", ...dryRunArgs);
    const result = JSON.parse(cli.stdout.join("")) as DryRunJson;
    expect(result.dryRun).toBe(true);
    expect(result.tables).toEqual({
      webhook: `${DEFAULT_RECORDS_NAME}-webhook`,
      refresher: `${DEFAULT_RECORDS_NAME}-refresher`,
    });
    // The webhook's part holds nothing secret: no kubeconfig.
    expect(result.records.webhook.kubeconfig).toBeUndefined();
    expect(result.records.refresher.clusterId).toBe("gitops");
    const [webhook, ...more] = result.manifests["webhook.yaml"] ?? [];
    expect(more).toEqual([]);
    expect(webhook?.webhooks?.[0]?.clientConfig.url).toBe(
      `https://abc.lambda-url.us-east-1.on.aws/v1/clusters/gitops/${result.webhookToken}`,
    );
    const kubeconfig = parse(result.records.refresher.kubeconfig) as {
      clusters: { cluster: { server: string } }[];
      users: { user: { token: string } }[];
    };
    expect(kubeconfig.clusters[0]?.cluster.server).toBe("https://api.example.com:6443");
    expect(kubeconfig.users[0]?.user.token).toBe("REPLACE-WITH-REFRESHER-TOKEN");
  });

  it("never says Apply: its steps are named for what it does", async () => {
    const titles: string[] = [];
    const cli = harness((flags) => {
      const printer = printerFor(flags.output, { stdout: { write: () => true } });
      return {
        operatorCluster: dryRunCluster,
        printer: {
          ...printer,
          steps: (context, steps, quiet) => {
            titles.push(...steps.map((step) => step.title));
            return printer.steps(context, steps, quiet);
          },
        },
      };
    });
    await cli.run(...dryRunArgs);
    expect(titles).toContain("Render the refresher's namespace, ServiceAccount and RBAC");
    expect(titles.filter((title) => /\bapply/i.test(title))).toEqual([]);
  });

  it("splits the objects by file: partial Namespaces, the refresher's RBAC, the webhook last", async () => {
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    await cli.run("-o", "json", ...dryRunArgs);
    const { manifests } = JSON.parse(cli.stdout.join("")) as DryRunJson;
    expect(Object.keys(manifests)).toEqual(["namespaces.yaml", "rbac.yaml", "webhook.yaml"]);
    // Only the name and the label: a GitOps tool applying it owns nothing else of the namespace.
    expect(manifests["namespaces.yaml"]).toEqual([
      {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: {
          name: "apps",
          labels: { "ecr-anywhere.centml.ai/namespace": "enabled" },
          annotations: {
            "argocd.argoproj.io/sync-wave": "1",
            "argocd.argoproj.io/sync-options": "ServerSideApply=true,Prune=false,Delete=false",
            "kustomize.toolkit.fluxcd.io/prune": "disabled",
          },
        },
      },
    ]);
    const rbac = manifests["rbac.yaml"] ?? [];
    expect(
      rbac.map((object) => object.metadata.annotations?.["argocd.argoproj.io/sync-wave"]),
    ).toEqual(rbac.map(() => "2"));
    expect(rbac.find((object) => object.kind === "Namespace")?.metadata.name).toBe("ecr-anywhere");
    // No --service-accounts: the ClusterRole only they would use is not rendered.
    expect(rbac.map((object) => object.metadata.name)).not.toContain(
      "ecr-anywhere-refresher-serviceaccounts",
    );
    expect(
      manifests["webhook.yaml"]?.[0]?.metadata.annotations?.["argocd.argoproj.io/sync-wave"],
    ).toBe("4");
  });

  it("renders the ServiceAccounts ClusterRole with its bindings, when --service-accounts asks for them", async () => {
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    await cli.run(
      "-o",
      "json",
      ...dryRunArgs,
      "--ensure-secret",
      "ecr-pull",
      "--service-accounts",
      "default",
    );
    const { manifests } = JSON.parse(cli.stdout.join("")) as DryRunJson;
    const names = (manifests["rbac.yaml"] ?? []).map(
      (object) => `${object.kind}/${object.metadata.name}`,
    );
    expect(names).toContain("ClusterRole/ecr-anywhere-refresher-serviceaccounts");
    expect(names).toContain("RoleBinding/ecr-anywhere-refresher-serviceaccounts");
  });

  it("with header authentication keeps the token out of the manifests", async () => {
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    await cli.run("-o", "json", ...dryRunArgs, "--webhook-auth", "header");
    const result = JSON.parse(cli.stdout.join("")) as DryRunJson;
    const token = result.webhookToken ?? "";
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(result.manifests)).not.toContain(token);
    expect(result.apiServerFiles["api-server/webhook-credentials.kubeconfig"]).toContain(token);
    expect(result.apiServerFiles["api-server/admission.yaml"]).toContain(
      "/etc/kubernetes/ecr-anywhere/webhook-credentials.kubeconfig",
    );
  });

  it("with --admission-config merges into the API server's file, and refuses one it cannot merge", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ecr-anywhere-admission-"));
    const existing = join(dir, "rke2-pss.yaml");
    await writeFile(
      existing,
      "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n  - name: PodSecurity\n    configuration:\n      apiVersion: pod-security.admission.config.k8s.io/v1\n      kind: PodSecurityConfiguration\n      defaults:\n        enforce: restricted\n",
    );
    const header = [...dryRunArgs, "--webhook-auth", "header", "--admission-config", existing];
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    await cli.run("-o", "json", ...header);
    const merged = parse(
      (JSON.parse(cli.stdout.join("")) as DryRunJson).apiServerFiles["api-server/admission.yaml"] ??
        "",
    ) as { plugins: { name: string }[] };
    expect(merged.plugins.map((plugin) => plugin.name)).toEqual([
      "PodSecurity",
      "MutatingAdmissionWebhook",
    ]);
    await writeFile(existing, "apiVersion: v1\nkind: ConfigMap\n");
    await expect(cli.run(...header)).rejects.toThrow(
      /--admission-config .*rke2-pss.yaml: not an AdmissionConfiguration/,
    );
    await expect(
      cli.run(...header, "--admission-kubeconfig-path", "webhook.kubeconfig"),
    ).rejects.toThrow(/absolute path/);
    await expect(cli.run(...dryRunArgs, "--admission-config", existing)).rejects.toThrow(
      /--admission-config goes with --webhook-auth header/,
    );
  });
});

describe("records name", () => {
  it("is the same default in every command, and onboard refuses a stack that reads elsewhere", async () => {
    const cli = harness(() => ({
      operatorCluster: dryRunCluster,
      stackOutputs: async () => ({
        webhookUrl: "https://abc.lambda-url.us-east-1.on.aws/",
        records: "team-a-clusters",
        recordKeyArn: KEY_ARN,
        refresherNetwork: "public",
        allowedRegistries: [EAST],
        refresherFunction: "ecr-anywhere-refresher",
      }),
    }));
    const withStack = dryRunArgs.filter(
      (arg, index, all) =>
        ![arg, all[index - 1]].some(
          (item) =>
            item === "--webhook-url" ||
            item === "--record-key-arn" ||
            item === "--allowed-registries",
        ),
    );
    await expect(cli.run(...withStack)).rejects.toThrow(
      /--records: stack EcrAnywhere keeps cluster records in the tables of records name team-a-clusters, not ecr-anywhere-clusters; pass --records team-a-clusters/,
    );
    await cli.run("-o", "json", "--records", "team-a-clusters", ...withStack);
    expect(JSON.parse(cli.stdout.join(""))).toMatchObject({
      tables: { webhook: "team-a-clusters-webhook", refresher: "team-a-clusters-refresher" },
    });
    await expect(cli.run("--records", "no spaces", "status")).rejects.toThrow(
      /"no spaces" is not a records name/,
    );
  });
});

describe("onboard: the address the refresher will use", () => {
  const clusterAt = (server: string) => (): OperatorCluster =>
    new Proxy(dryRunCluster(), {
      get: (target, property) =>
        property === "server" ? server : target[property as keyof OperatorCluster],
    });
  const withStack = dryRunArgs.filter(
    (arg, index, all) =>
      ![arg, all[index - 1]].some(
        (item) =>
          item === "--webhook-url" ||
          item === "--record-key-arn" ||
          item === "--allowed-registries",
      ),
  );
  const stackIn = (refresherNetwork: "public" | "static-egress" | "vpc") => async () => ({
    webhookUrl: "https://abc.lambda-url.us-east-1.on.aws/",
    records: DEFAULT_RECORDS_NAME,
    recordKeyArn: KEY_ARN,
    refresherNetwork,
    allowedRegistries: [EAST],
    refresherFunction: "ecr-anywhere-refresher",
  });
  const renderedServer = (stdout: string[]) =>
    (
      parse(
        (JSON.parse(stdout.join("")) as { records: { refresher: { kubeconfig: string } } }).records
          .refresher.kubeconfig,
      ) as { clusters: { cluster: { server: string } }[] }
    ).clusters[0]?.cluster.server;

  it.each([
    ["https://127.0.0.1:6443", /^the kubeconfig's API server 127\.0\.0\.1:6443 is a loopback/],
    ["https://localhost:6443", /^the kubeconfig's API server localhost:6443 is a loopback/],
    ["https://[fe80::1]:6443", /is a loopback, link-local or metadata address/],
    ["https://192.168.1.10:6443", /192\.168\.1\.10:6443 is a private address .*network public/],
    ["https://100.64.0.1:6443", /is a private address/],
    ["https://[fd12::1]:6443", /is a private address/],
  ])(
    "refuses a kubeconfig server %s in one line, naming --api-server-url, exit 2",
    async (server, reason) => {
      const cli = harness(() => ({ operatorCluster: clusterAt(server) }));
      const refused = cli.run("-o", "json", ...dryRunArgs);
      await expect(refused).rejects.toThrow(reason);
      // Exit 2: bad input, refused before anything is rendered.
      const failure = (await refused.catch((error: Error) => error)) as Error;
      expect(failure.cause).toBeInstanceOf(InputError);
      const message = failure.message;
      expect(message).not.toContain("\n");
      expect(message).toContain("pass --api-server-url");
      expect(cli.stdout).toEqual([]);
    },
  );

  it("takes --api-server-url as the record's server, and checks it with the same rule", async () => {
    const cli = harness(() => ({ operatorCluster: clusterAt("https://127.0.0.1:6443") }));
    await cli.run("-o", "json", ...dryRunArgs, "--api-server-url", "https://k3s.example.com:6443");
    expect(renderedServer(cli.stdout)).toBe("https://k3s.example.com:6443");
    await expect(
      cli.run("-o", "json", ...dryRunArgs, "--api-server-url", "https://10.0.0.5:6443"),
    ).rejects.toThrow(/^--api-server-url: 10\.0\.0\.5:6443 is a private address/);
  });

  it("accepts a private server when the stack runs its refresher in the user's VPC, never a loopback one", async () => {
    const cli = harness(() => ({
      operatorCluster: clusterAt("https://10.20.0.5:6443"),
      stackOutputs: stackIn("vpc"),
    }));
    await cli.run("-o", "json", ...withStack);
    expect(renderedServer(cli.stdout)).toBe("https://10.20.0.5:6443");
    const local = harness(() => ({
      operatorCluster: clusterAt("https://127.0.0.1:6443"),
      stackOutputs: stackIn("vpc"),
    }));
    await expect(local.run("-o", "json", ...withStack)).rejects.toThrow(/is a loopback/);
    const egress = harness(() => ({
      operatorCluster: clusterAt("https://10.20.0.5:6443"),
      stackOutputs: stackIn("static-egress"),
    }));
    await expect(egress.run("-o", "json", ...withStack)).rejects.toThrow(
      /network static-egress\) cannot reach/,
    );
  });

  it("without the stack, takes the network from --refresher-network; with it, refuses a flag that disagrees", async () => {
    const cli = harness(() => ({ operatorCluster: clusterAt("https://10.20.0.5:6443") }));
    await cli.run("-o", "json", ...dryRunArgs, "--refresher-network", "vpc");
    expect(renderedServer(cli.stdout)).toBe("https://10.20.0.5:6443");
    await expect(
      cli.run("-o", "json", ...dryRunArgs, "--refresher-network", "private"),
    ).rejects.toThrow(/expected one of public, static-egress, vpc/);
    const stacked = harness(() => ({
      operatorCluster: clusterAt("https://10.20.0.5:6443"),
      stackOutputs: stackIn("public"),
    }));
    await expect(
      stacked.run("-o", "json", ...withStack, "--refresher-network", "vpc"),
    ).rejects.toThrow(
      /--refresher-network vpc: stack EcrAnywhere runs its refresher in network public/,
    );
  });

  it("keeps the local test bed's allowance", async () => {
    const cli = harness(() => ({
      operatorCluster: clusterAt("https://127.0.0.1:6443"),
      localTestBed: true,
    }));
    await cli.run("-o", "json", ...dryRunArgs);
    expect(renderedServer(cli.stdout)).toBe("https://127.0.0.1:6443");
  });
});

describe("status", () => {
  it("reaches a record's loopback server over the operator's route, and reports that the refresher cannot use it", async () => {
    const reached: string[] = [];
    const kubeconfig = refresherKubeconfig({
      clusterId: "local",
      server: "https://127.0.0.1:6443",
      caData: CA_DATA,
      token: "t",
    });
    const cli = harness(() => ({
      recordStore: () =>
        ({
          clusterIds: async () => ["local"],
          readRefresherPart: async () => ({
            record: { clusterId: "local", kubeconfig },
            deleted: false,
          }),
          close() {},
        }) as never,
      recordCluster: (text: string) => {
        reached.push(text);
        return { enabledNamespaces: async () => ["apps"], managedSecrets: async () => [] };
      },
    }));
    await cli.run("-o", "json", "status");
    expect(reached).toEqual([kubeconfig]);
    const result = JSON.parse(cli.stdout.join("")) as {
      clusters: { reachable: boolean; problems: string[] }[];
    };
    expect(result.clusters[0]?.reachable).toBe(true);
    expect(result.clusters[0]?.problems).toEqual([
      expect.stringMatching(
        /^refresher cannot use the record: kubeconfig cluster "local": server 127\.0\.0\.1:6443 is a loopback/,
      ),
    ]);
    expect(process.exitCode).toBe(1);
  });

  it("reads every record through the factory and exits 1 when a cluster has a problem", async () => {
    const cli = harness(() => ({
      recordStore: () =>
        ({
          clusterIds: async () => ["gone", "broken"],
          readRefresherPart: async (id: string) =>
            id === "gone" ? undefined : { record: undefined, invalid: "not JSON", deleted: false },
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

const VALID_ONBOARD: OnboardOptions = {
  clusterId: "c",
  registries: [EAST],
  namespaces: ["apps"],
  allowedSourceCidrs: ["203.0.113.0/24"],
  allowAnySource: false,
  allowPrivateSources: false,
  aws: { stack: "EcrAnywhere", skipRefresherCheck: false },
  rotateToken: false,
  replaceExisting: false,
  dryRun: false,
  webhookAuth: "url",
  admissionKubeconfigPath: "/etc/x",
  verifyTimeoutSeconds: 90,
};

describe("onboard's rules between flags", () => {
  const valid = VALID_ONBOARD;
  it.each<[Partial<OnboardOptions>, RegExp]>([
    [{ serviceAccounts: ["default"] }, /--service-accounts needs --ensure-secret/],
    [{ pullThroughCache: true }, /--pull-through-cache needs --repositories/],
    [{ allowAnySource: true }, /exclude each other/],
    [{ allowedSourceCidrs: undefined }, /--allowed-source-cidrs is needed/],
    [{ out: "dir" }, /--out goes with --dry-run/],
    [{ webhookAuth: "header" }, /--webhook-auth header needs --dry-run/],
    [{ tokenFile: "t" }, /--token-file goes with --dry-run/],
    [
      { dryRun: true, admissionConfigFile: "a.yaml" },
      /--admission-config goes with --webhook-auth header/,
    ],
    [
      { aws: { stack: "X", webhookUrl: "https://w.example.com/", skipRefresherCheck: false } },
      /--webhook-url needs --refresher-function \(the stack's RefresherFunctionName output\).*or --skip-refresher-check/,
    ],
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
    // Without a stack: the refresher named, skipped, or a dry run that asks nothing of it.
    const webhookUrl = "https://w.example.com/";
    for (const aws of [
      { stack: "X", webhookUrl, refresherFunction: "f", skipRefresherCheck: false },
      { stack: "X", webhookUrl, skipRefresherCheck: true },
    ])
      expect(() => validateOnboard({ ...valid, aws })).not.toThrow();
    expect(() =>
      validateOnboard({
        ...valid,
        dryRun: true,
        aws: { stack: "X", webhookUrl, skipRefresherCheck: false },
      }),
    ).not.toThrow();
  });
});

describe("onboard's endpoints: the allowed registries and the refresher", () => {
  const stack = {
    webhookUrl: "https://abc.lambda-url.us-east-1.on.aws/",
    records: DEFAULT_RECORDS_NAME,
    recordKeyArn: KEY_ARN,
    refresherNetwork: "public" as const,
    allowedRegistries: [EAST] as readonly string[] | undefined,
    refresherFunction: "EcrAnywhere-EcrAnywhereRefresher-abc" as string | undefined,
  };
  const factory = (outputs: typeof stack) => ({
    records: DEFAULT_RECORDS_NAME,
    stackOutputs: async () => outputs,
  });

  it("reads both from the stack, and refuses them as flags beside it", async () => {
    await expect(
      resolveEndpoints({ stack: "S", skipRefresherCheck: false }, undefined, factory(stack)),
    ).resolves.toMatchObject({
      allowedRegistries: [EAST],
      refresherFunction: "EcrAnywhere-EcrAnywhereRefresher-abc",
    });
    await expect(
      resolveEndpoints({ stack: "S", skipRefresherCheck: true }, undefined, factory(stack)),
    ).resolves.toMatchObject({ refresherFunction: undefined });
    await expect(
      resolveEndpoints(
        { stack: "S", allowedRegistries: [EAST], skipRefresherCheck: false },
        undefined,
        factory(stack),
      ),
    ).rejects.toThrow(/--allowed-registries goes with --webhook-url/);
  });

  it("names the output a stack deployed by an older version lacks", async () => {
    await expect(
      resolveEndpoints(
        { stack: "S", skipRefresherCheck: false },
        undefined,
        factory({ ...stack, allowedRegistries: undefined }),
      ),
    ).rejects.toThrow(/stack S has no output AllowedRegistries: it was deployed by an older/);
    await expect(
      resolveEndpoints(
        { stack: "S", skipRefresherCheck: false },
        undefined,
        factory({ ...stack, refresherFunction: undefined }),
      ),
    ).rejects.toThrow(/no output RefresherFunctionName: .*or pass --skip-refresher-check/);
  });

  it("with --webhook-url, requires the list: nothing else says what the tokens may pull", async () => {
    const target = {
      stack: "S",
      webhookUrl: "https://w.example.com/",
      recordKeyArn: KEY_ARN,
      skipRefresherCheck: true,
    };
    await expect(resolveEndpoints(target, undefined, factory(stack))).rejects.toThrow(
      /--webhook-url needs --allowed-registries \(the stack's AllowedRegistries output\)/,
    );
    await expect(
      resolveEndpoints({ ...target, allowedRegistries: [EAST] }, undefined, factory(stack)),
    ).resolves.toMatchObject({ allowedRegistries: [EAST], refresherFunction: undefined });
  });
});

describe("onboard into a cluster", () => {
  it("keeps the refresher's own state in the record when it re-writes it", async () => {
    const written: unknown[] = [];
    const existingRecord = {
      clusterId: "c",
      kubeconfig: "k",
      webhookTokenSha256: ["a".repeat(64)],
      registries: [EAST],
      refresher: { openFailures: ["uid-1"] },
    };
    const cli = harness(() => ({
      operatorCluster: () =>
        ({
          config: { currentContext: "c" },
          server: "https://api.example.com:6443",
          caData: () => CA_DATA,
          read: async () => undefined,
          deniedAccess: async () => [],
          serverVersion: async () => ({ major: 1, minor: 36 }),
          missingNamespaces: async () => [],
          webhookConfigurations: async () => [],
          apply: async () => "created",
          requestToken: async () => "refresher-token-that-is-long-enough",
          dryRunManagedSecret: async () => {
            throw new Error("stop here: the record is written before verification");
          },
        }) as unknown as OperatorCluster,
      recordStore: () =>
        ({
          problems: async () => [],
          read: async () => ({ record: existingRecord, kmsKeyId: KEY_ARN, deleted: false }),
          write: async (record: unknown) => {
            written.push(record);
            return "updated";
          },
          locationOf: (id: string) => id,
          close() {},
        }) as unknown as Records,
    }));
    const args = [...dryRunArgs.filter((arg) => arg !== "--dry-run"), "--skip-refresher-check"];
    await expect(cli.run("-o", "json", ...args, "--verify-timeout", "1")).rejects.toThrow(
      /stop here/,
    );
    expect(written).toEqual([
      expect.objectContaining({ clusterId: "gitops", refresher: { openFailures: ["uid-1"] } }),
    ]);
  });
});

describe("onboard and the API server's Kubernetes version", () => {
  /** Onboards into a cluster of this version; returns what it applied and the steps it finished. */
  async function onboardInto(version: { major: number; minor: number }) {
    const applied: unknown[] = [];
    const cli = harness(() => ({
      operatorCluster: () =>
        ({
          config: { currentContext: "c" },
          server: "https://api.example.com:6443",
          caData: () => CA_DATA,
          read: async () => undefined,
          deniedAccess: async () => [],
          serverVersion: async () => version,
          missingNamespaces: async () => [],
          webhookConfigurations: async () => [],
          apply: async (object: unknown) => {
            applied.push(object);
            return "created";
          },
          requestToken: async () => "refresher-token-that-is-long-enough",
          dryRunManagedSecret: async () => {
            throw new Error("stop here: verification is not this test's business");
          },
        }) as unknown as OperatorCluster,
      recordStore: () =>
        ({
          problems: async () => [],
          read: async () => undefined,
          write: async () => "created",
          locationOf: (id: string) => id,
          close() {},
        }) as unknown as Records,
    }));
    const args = [...dryRunArgs.filter((arg) => arg !== "--dry-run"), "--skip-refresher-check"];
    // Past the plan, the step's failure is carried by the interruption's report.
    const failure = await cli.run("-o", "json", ...args, "--verify-timeout", "1").then(
      () => undefined,
      (error: unknown) =>
        (error instanceof StepFailure ? error : (error as Error).cause) as StepFailure,
    );
    return { applied, failure };
  }

  it("refuses a server older than the features need, naming its version and the minimum, before changing anything", async () => {
    const { applied, failure } = await onboardInto({ major: 1, minor: 21 });
    expect(failure).toBeInstanceOf(StepFailure);
    expect(failure?.message).toMatch(
      /^the API server runs Kubernetes 1\.21; ECR Anywhere needs 1\.22 or newer \(server-side apply needs 1\.22\): upgrade the cluster first$/,
    );
    expect(failure?.completed.map((step) => step.title)).not.toContain(failure?.step);
    expect(applied).toEqual([]);
  });

  it.each([
    [{ major: 1, minor: 28 }, "Kubernetes 1.28 is older than the oldest tested minor (1.32)"],
    [{ major: 1, minor: 37 }, "Kubernetes 1.37 is newer than the newest tested minor (1.36)"],
  ])("goes ahead on %j with a warning in the check's outcome", async (version, warning) => {
    const { applied, failure } = await onboardInto(version);
    expect(failure?.message).toMatch(/stop here/);
    expect(applied.length).toBeGreaterThan(0);
    const outcomes = failure?.completed.map((step) => step.outcome).join("\n") ?? "";
    expect(outcomes).toContain(`; warning: ${warning}`);
  });

  it("says nothing about the version on a tested minor", async () => {
    const { failure } = await onboardInto({ major: 1, minor: 32 });
    expect(failure?.completed.map((step) => step.outcome).join("\n")).not.toMatch(/warning/);
  });
});

describe("--allowed-source-cidrs", () => {
  it.each([
    ["0.0.0.0/0", /accepts \(nearly\) any address.*--allow-any-source/],
    ["::/0", /accepts \(nearly\) any address/],
    ["1.0.0.0/1", /wider than \/8/],
    ["2000::/3", /wider than \/16/],
    ["203.0.113.7", /is an address, not a CIDR: add \/32/],
    ["2001:db8::1", /add \/128/],
    ["203.0.113.7/24", /has host bits set: the network is 203.0.113.0\/24/],
    ["203.0.113.0/33", /expected CIDRs/],
  ])("refuses %s, saying why", (cidr, message) => {
    expect(() => parseCidrs(cidr)).toThrow(InputError);
    expect(() => parseCidrs(cidr)).toThrow(message);
  });

  it.each([
    "10.1.0.0/16",
    "172.20.0.0/16",
    "192.168.1.0/24",
    "100.64.0.0/10",
    "127.0.0.1/32",
    "169.254.169.254/32",
    "198.18.0.0/15",
    "224.0.0.0/8",
    "8.0.0.0/8",
    "fd12:3456::/48",
    "fe80::/64",
    "64:ff9b::/96",
  ])("refuses %s for a function URL, which sees only public sources", (cidr) => {
    const options = { ...VALID_ONBOARD, allowedSourceCidrs: parseCidrs(cidr) };
    if (cidr === "8.0.0.0/8") {
      // A public /8 that holds no private range is fine.
      expect(() => validateOnboard(options)).not.toThrow();
      return;
    }
    expect(() => validateOnboard(options)).toThrow(/only ever sees public source addresses/);
    // A webhook of one's own (--ca-bundle) and the local test bed may see them.
    expect(() => validateOnboard({ ...options, caBundleFile: "ca.pem" })).not.toThrow();
    expect(() => validateOnboard({ ...options, allowPrivateSources: true })).not.toThrow();
  });

  it("accepts exact public networks", () => {
    expect(parseCidrs("203.0.113.0/24, 198.51.100.7/32,2001:db8::/48")).toEqual([
      "203.0.113.0/24",
      "198.51.100.7/32",
      "2001:db8::/48",
    ]);
  });
});

describe("onboard --dry-run --out", () => {
  const URL_MODE_FILES = [
    "namespaces.yaml",
    "rbac.yaml",
    "webhook.yaml",
    "webhook-record.json",
    "refresher-record.json",
  ];

  it("replaces an existing readable file and a planted symlink with 0600 files, never writing through", async () => {
    const out = await mkdtemp(join(tmpdir(), "ecr-anywhere-out-"));
    const elsewhere = join(out, "..", `${basename(out)}-victim`);
    await writeFile(elsewhere, "untouched");
    await writeFile(join(out, "webhook.yaml"), "old", { mode: 0o644 });
    await symlink(elsewhere, join(out, "refresher-record.json"));
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    await cli.run(...dryRunArgs, "--out", out);
    for (const name of URL_MODE_FILES) {
      const file = await lstat(join(out, name));
      expect(file.isFile(), name).toBe(true);
      expect(file.mode & 0o777, name).toBe(0o600);
    }
    expect(await readFile(elsewhere, "utf8")).toBe("untouched");
    expect(cli.stdout.join("")).toMatch(/nothing was changed/);
  });

  it("starts each YAML file with what it is, whether it is secret, and when it is applied", async () => {
    const out = await mkdtemp(join(tmpdir(), "ecr-anywhere-out-"));
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    await cli.run(...dryRunArgs, "--out", out);
    const head = async (name: string) =>
      (await readFile(join(out, name), "utf8")).split("\napiVersion")[0];
    expect(await head("namespaces.yaml")).toMatch(
      /^# .*No secret: safe to commit\.\n# Phase 1.*wave 1/,
    );
    expect(await head("rbac.yaml")).toMatch(/No secret: safe to commit\.\n# Phase 1.*wave 2/);
    expect(await head("webhook.yaml")).toMatch(
      /SECRET: its URL carries the webhook token.*\n# Phase 2.*wave 4/,
    );
    const header = await mkdtemp(join(tmpdir(), "ecr-anywhere-out-"));
    await cli.run(...dryRunArgs, "--webhook-auth", "header", "--out", header);
    expect((await readFile(join(header, "webhook.yaml"), "utf8")).split("\napiVersion")[0]).toMatch(
      /No secret .*safe to commit/,
    );
    expect(
      await readFile(join(header, "api-server/webhook-credentials.kubeconfig"), "utf8"),
    ).toMatch(
      /^# .*SECRET: never commit it\.\n# Install on every API server host at \/etc\/kubernetes\/ecr-anywhere\/webhook-credentials.kubeconfig/,
    );
    expect((await lstat(join(header, "api-server"))).mode & 0o777).toBe(0o700);
  });

  it("with --token-file makes the token once (0600) and renders byte-identical files after", async () => {
    const root = await mkdtemp(join(tmpdir(), "ecr-anywhere-out-"));
    const tokenFile = join(root, "webhook.token");
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    const render = async (out: string) => {
      await cli.run(...dryRunArgs, "--token-file", tokenFile, "--out", out);
      return Object.fromEntries(
        await Promise.all(
          URL_MODE_FILES.map(async (name) => [name, await readFile(join(out, name), "utf8")]),
        ),
      );
    };
    const first = await render(join(root, "a"));
    expect((await lstat(tokenFile)).mode & 0o777).toBe(0o600);
    const token = (await readFile(tokenFile, "utf8")).trim();
    expect(first["webhook.yaml"]).toContain(`/v1/clusters/gitops/${token}`);
    expect(await render(join(root, "b"))).toEqual(first);
    // Not printed: it is in the file already.
    expect(cli.stdout.join("")).not.toContain(token);
    await chmod(tokenFile, 0o644);
    await expect(render(join(root, "c"))).rejects.toThrow(/open to group or others \(mode 644\)/);
    await chmod(tokenFile, 0o600);
    await symlink(tokenFile, join(root, "link"));
    await expect(
      cli.run(...dryRunArgs, "--token-file", join(root, "link"), "--out", join(root, "d")),
    ).rejects.toThrow(/a symlink is refused/);
    await writeFile(join(root, "junk"), "not a token", { mode: 0o600 });
    await expect(
      cli.run(...dryRunArgs, "--token-file", join(root, "junk"), "--out", join(root, "e")),
    ).rejects.toThrow(/not a webhook token/);
  });

  it("makes a new folder 0700 and refuses a folder that is a symlink", async () => {
    const root = await mkdtemp(join(tmpdir(), "ecr-anywhere-out-"));
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    await cli.run(...dryRunArgs, "--out", join(root, "new"));
    expect((await lstat(join(root, "new"))).mode & 0o777).toBe(0o700);
    await symlink(join(root, "new"), join(root, "link"));
    await expect(cli.run(...dryRunArgs, "--out", join(root, "link"))).rejects.toThrow(
      /not a directory \(a symlink or a file is refused\)/,
    );
  });

  it("in JSON lists the files it wrote, with neither their content nor the token", async () => {
    const out = await mkdtemp(join(tmpdir(), "ecr-anywhere-out-"));
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    await cli.run("-o", "json", ...dryRunArgs, "--out", out);
    const result = JSON.parse(cli.stdout.join("")) as {
      files: { name: string; secret: boolean }[];
    };
    expect(result.files).toEqual(
      URL_MODE_FILES.map((name) => ({
        name,
        secret: name === "webhook.yaml" || name === "refresher-record.json",
      })),
    );
    const token = /clusters\/gitops\/([A-Za-z0-9_-]{43})/.exec(
      await readFile(join(out, "webhook.yaml"), "utf8"),
    )?.[1];
    expect(token).toBeDefined();
    expect(cli.stdout.join("")).not.toContain(token);
  });
});

describe("status on a terminal", () => {
  it("prints nothing a hostile cluster could use to drive the terminal", async () => {
    const osc52 = "\u001b]52;c;ZWNobyBwd25lZA==\u0007";
    const cli = harness((flags) => ({
      printer: printerFor(flags.output, { stdout: { write: (text) => cli.stdout.push(text) } }),
      recordStore: () =>
        ({
          clusterIds: async () => ["hostile"],
          readRefresherPart: async () => ({
            record: {
              version: 1,
              clusterId: "hostile",
              kubeconfig: `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://k8s.example.com", certificate-authority-data: Y2E=}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
              webhookTokenSha256: ["a".repeat(64)],
              registries: [EAST],
            },
            kmsKeyId: KEY_ARN,
            deleted: false,
          }),
          close() {},
        }) as unknown as Records,
      recordCluster: () => ({
        enabledNamespaces: async () => [`apps${osc52}`],
        managedSecrets: async () => {
          throw new Error(`boom\u001b[2J${osc52}`);
        },
      }),
    }));
    await cli.run("status");
    const printed = cli.stdout.join("");
    expect(printed).toContain("hostile");
    expect(printed).not.toContain("\u001b");
    expect(printed).not.toContain("\u0007");
  });
});

describe("--version", () => {
  it("prints the package's version", async () => {
    const { readFile: read } = await import("node:fs/promises");
    const { version } = JSON.parse(await read("package.json", "utf8")) as { version: string };
    const written: string[] = [];
    const program = buildProgram();
    program.configureOutput({ writeOut: (text) => written.push(text) });
    await expect(program.parseAsync(["node", "ecr-anywhere", "--version"])).rejects.toMatchObject({
      code: "commander.version",
      exitCode: 0,
    });
    expect(written.join("")).toBe(`${version}\n`);
  });
});

describe("more bad input", () => {
  it("names a bad cluster id given to status (exit 2 through commander)", async () => {
    const cli = harness();
    await expect(cli.run("status", "Bad_Id")).rejects.toMatchObject({
      code: "commander.invalidArgument",
      message: expect.stringMatching(/cluster id "Bad_Id": expected a DNS-1123 label/),
    });
  });

  it("refuses an --out folder others can write to", async () => {
    const root = await mkdtemp(join(tmpdir(), "ecr-anywhere-out-"));
    const shared = join(root, "shared");
    await mkdir(shared);
    await chmod(shared, 0o777);
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    await expect(cli.run(...dryRunArgs, "--out", shared)).rejects.toThrow(
      /writable by group or others \(mode 777\)/,
    );
  });
});

describe("put-record", () => {
  /** The files onboard --dry-run writes, rendered by the same run. */
  async function rendered(): Promise<string> {
    const out = await mkdtemp(join(tmpdir(), "ecr-anywhere-put-record-"));
    const cli = harness(() => ({ operatorCluster: dryRunCluster }));
    await cli.run(...dryRunArgs, "--out", out);
    return out;
  }
  const stack = (records: string) => async () => ({
    webhookUrl: "https://abc.lambda-url.us-east-1.on.aws/",
    records,
    recordKeyArn: KEY_ARN,
    refresherNetwork: "public" as const,
    allowedRegistries: [EAST],
    refresherFunction: "ecr-anywhere-refresher",
  });

  it("refuses a placeholder left in, and a stack that keeps records elsewhere, before touching the store", async () => {
    const out = await rendered();
    const cli = harness(() => ({ stackOutputs: stack("team-a-clusters") }));
    await expect(cli.run("put-record", "gitops", "--from", out)).rejects.toThrow(
      /replace REPLACE-WITH-REFRESHER-TOKEN in refresher-record.json's kubeconfig/,
    );
    const file = join(out, "refresher-record.json");
    await writeFile(
      file,
      (await readFile(file, "utf8")).replace("REPLACE-WITH-REFRESHER-TOKEN", "t"),
    );
    await expect(cli.run("put-record", "gitops", "--from", out)).rejects.toThrow(
      /--records: stack EcrAnywhere keeps cluster records in the tables of records name team-a-clusters/,
    );
    await expect(cli.run("put-record", "other-id", "--from", out)).rejects.toThrow(
      /the record is invalid: .*does not match its key \(other-id\)/,
    );
  });

  it("refuses a record whose API server the refresher cannot reach, by the stack's network", async () => {
    const out = await rendered();
    const file = join(out, "refresher-record.json");
    await writeFile(
      file,
      (await readFile(file, "utf8"))
        .replace("REPLACE-WITH-REFRESHER-TOKEN", "t")
        .replace("https://api.example.com:6443", "https://10.0.0.5:6443"),
    );
    const cli = harness(() => ({ stackOutputs: stack(DEFAULT_RECORDS_NAME) }));
    await expect(cli.run("put-record", "gitops", "--from", out)).rejects.toThrow(
      /refresher-record.json: the API server 10\.0\.0\.5:6443 is a private address .* \(docs\/network.md\)/,
    );
    await expect(
      cli.run("put-record", "gitops", "--from", out, "--refresher-network", "vpc"),
    ).rejects.toThrow(/--refresher-network goes with --record-key-arn/);
    // Stated with the key, a vpc network reaches it: the check passes on to the record store.
    const stored = harness(() => ({
      recordStore: () =>
        ({
          problems: async () => ["the record store was reached"],
          close() {},
        }) as unknown as Records,
    }));
    await expect(
      stored.run(
        "put-record",
        "gitops",
        "--from",
        out,
        "--record-key-arn",
        KEY_ARN,
        "--refresher-network",
        "vpc",
      ),
    ).rejects.toThrow(/the record store was reached/);
  });

  it("writes the joined record under the stack's key, keeping the stored refresher state", async () => {
    const out = await rendered();
    const file = join(out, "refresher-record.json");
    await writeFile(
      file,
      (await readFile(file, "utf8")).replace("REPLACE-WITH-REFRESHER-TOKEN", "t"),
    );
    const written: unknown[] = [];
    const cli = harness(() => ({
      stackOutputs: stack(DEFAULT_RECORDS_NAME),
      recordStore: () =>
        ({
          problems: async () => [],
          read: async () => ({
            record: { refresher: { openFailures: ["u-1"] } },
            kmsKeyId: KEY_ARN,
            deleted: false,
          }),
          write: async (record: unknown, keyArn: string) => {
            written.push({ record, keyArn });
            return "updated";
          },
          locationOf: (id: string) => id,
          close() {},
        }) as unknown as Records,
    }));
    await cli.run("-o", "json", "put-record", "gitops", "--from", out);
    expect(JSON.parse(cli.stdout.join(""))).toEqual({
      ok: true,
      clusterId: "gitops",
      outcome: "updated",
    });
    expect(written).toEqual([
      {
        keyArn: KEY_ARN,
        record: expect.objectContaining({
          clusterId: "gitops",
          registries: [EAST],
          kubeconfig: expect.stringContaining("token: t"),
          refresher: { openFailures: ["u-1"] },
        }),
      },
    ]);
  });
});

describe("a cluster with header authentication", () => {
  const HEADER_URL = "https://abc.lambda-url.us-east-1.on.aws/v1/clusters/hdr";
  const H1 = "1".repeat(64);

  function headerCluster(dryRun: () => Promise<unknown> = async () => ({})) {
    return {
      config: { currentContext: "hdr" },
      webhookConfigurations: async () => [
        { name: "ecr-anywhere", webhooks: [{ name: "w", clientConfig: { url: HEADER_URL } }] },
      ],
      remove: async () => "deleted",
      namespacesWith: async () => ["apps"],
      apply: async () => "configured",
      roleBindingsWith: async () => [],
      read: async () => undefined,
      serverVersion: async () => ({ major: 1, minor: 36 }),
      dryRunManagedSecret: dryRun,
    } as unknown as OperatorCluster;
  }

  function hashStore(hashes: string[], calls: [string[], string[]][]) {
    return {
      readWebhookPart: async () => ({
        record: { clusterId: "hdr", webhookTokenSha256: [...hashes], registries: [EAST] },
        deleted: false,
      }),
      replaceTokenHashes: async (_: string, from: string[], to: string[]) => {
        calls.push([from, to]);
      },
      scheduleDeletion: async () => "scheduled",
      close() {},
    } as unknown as Records;
  }

  it("is recognised by offboard, which removes it", async () => {
    const calls: [string[], string[]][] = [];
    const cli = harness(() => ({
      operatorCluster: () => headerCluster(),
      recordStore: () => hashStore([H1], calls),
    }));
    await cli.run("-o", "json", "offboard", "hdr", "--yes");
    expect(JSON.parse(cli.stdout.join(""))).toMatchObject({ ok: true, clusterId: "hdr" });
  });

  it("rotates in two runs: a new credentials kubeconfig with both hashes valid, then only the new one", async () => {
    const out = await mkdtemp(join(tmpdir(), "ecr-anywhere-rotate-"));
    const calls: [string[], string[]][] = [];
    const start = harness(() => ({
      operatorCluster: () => headerCluster(),
      recordStore: () => hashStore([H1], calls),
    }));
    await expect(start.run("rotate-token", "hdr")).rejects.toThrow(/--out is needed/);
    await start.run("-o", "json", "rotate-token", "hdr", "--out", out);
    const credentials = parse(
      await readFile(join(out, "webhook-credentials.kubeconfig"), "utf8"),
    ) as {
      users: { name: string; user: { token: string } }[];
    };
    const token = credentials.users[0]?.user.token ?? "";
    expect(credentials.users[0]?.name).toBe("abc.lambda-url.us-east-1.on.aws");
    const h2 = createHash("sha256").update(token).digest("hex");
    expect(calls).toEqual([[[H1], [H1, h2]]]);
    expect(start.stdout.join("")).not.toContain(token);
    expect((await lstat(join(out, "webhook-credentials.kubeconfig"))).mode & 0o777).toBe(0o600);

    const filled = async () => ({
      metadata: {
        annotations: { [contractNames("ecr-anywhere.centml.ai").expiresAtAnnotation]: "x" },
      },
    });
    const finish = harness(() => ({
      operatorCluster: () => headerCluster(filled),
      recordStore: () => hashStore([H1, h2], calls),
    }));
    await finish.run("-o", "json", "rotate-token", "hdr", "--finish", "--propagation-seconds", "0");
    expect(calls.at(-1)).toEqual([[H1, h2], [h2]]);
  });

  it("puts the old hash back when the API server still sends the old token", async () => {
    const calls: [string[], string[]][] = [];
    const refused = async () => {
      throw new Error("HTTP 403: failed calling webhook: Forbidden");
    };
    const cli = harness(() => ({
      operatorCluster: () => headerCluster(refused),
      recordStore: () => hashStore([H1, "2".repeat(64)], calls),
    }));
    await expect(
      cli.run(
        "rotate-token",
        "hdr",
        "--finish",
        "--propagation-seconds",
        "0",
        "--verify-timeout",
        "0",
      ),
    ).rejects.toThrow(/does not send the new token yet .*both tokens are valid again/);
    expect(calls).toEqual([
      [[H1, "2".repeat(64)], ["2".repeat(64)]],
      [["2".repeat(64)], [H1, "2".repeat(64)]],
    ]);
  });
});

describe("offboard --record-only", () => {
  it("schedules the record's deletion without reading any kubeconfig", async () => {
    let scheduled = "";
    const cli = harness(() => ({
      recordStore: () =>
        ({
          readWebhookPart: async () => ({ record: undefined, deleted: false }),
          scheduleDeletion: async (id: string) => {
            scheduled = id;
            return "scheduled";
          },
          close() {},
        }) as unknown as Records,
    }));
    await cli.run("offboard", "gone", "--record-only", "--yes");
    expect(scheduled).toBe("gone");
    expect(cli.stdout.join("")).toMatch(/record of cluster gone is scheduled for deletion/);
  });
});
