/** The operator's kubeconfig, loaded and checked as kubectl does: real files, client-go's words. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserCluster } from "../../cli/adapters/user-cluster.ts";
import { InputError } from "../../cli/core/inputs.ts";

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ecr-anywhere-kubeconfig-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Shape {
  readonly currentContext?: string;
  readonly clusters?: readonly string[];
  readonly users?: readonly string[];
  readonly contexts?: readonly { name: string; cluster: string; user: string }[];
}

/** A kubeconfig file of that shape, in YAML as kubectl writes it. */
async function kubeconfigFile(name: string, shape: Shape): Promise<string> {
  const lines = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    ...(shape.clusters ?? ["c"]).map(
      (cluster) =>
        `- name: ${cluster}\n  cluster:\n    server: https://${cluster}.example.com:6443`,
    ),
    "users:",
    ...(shape.users ?? ["u"]).map((user) => `- name: ${user}\n  user:\n    token: not-a-token`),
    "contexts:",
    ...(shape.contexts ?? [{ name: "x", cluster: "c", user: "u" }]).map(
      (context) =>
        `- name: ${context.name}\n  context:\n    cluster: ${context.cluster}\n    user: ${context.user}`,
    ),
    ...(shape.currentContext === undefined ? [] : [`current-context: ${shape.currentContext}`]),
  ];
  const file = join(dir, name);
  await writeFile(file, `${lines.join("\n")}\n`);
  return file;
}

function loadError(load: () => unknown): string {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return (error as Error).message;
  }
  throw new Error("the kubeconfig loaded");
}

describe("UserCluster.load", () => {
  it("uses the current-context, or --context", async () => {
    const file = await kubeconfigFile("two.yaml", {
      currentContext: "x",
      clusters: ["c", "d"],
      contexts: [
        { name: "x", cluster: "c", user: "u" },
        { name: "y", cluster: "d", user: "u" },
      ],
    });
    expect(UserCluster.load({ kubeconfig: file }).server).toBe("https://c.example.com:6443");
    expect(UserCluster.load({ kubeconfig: file, context: "y" }).server).toBe(
      "https://d.example.com:6443",
    );
  });

  it("says no context is chosen when there is no current-context", async () => {
    const file = await kubeconfigFile("no-current.yaml", {});
    expect(loadError(() => UserCluster.load({ kubeconfig: file }))).toBe(
      "no context chosen: the kubeconfig sets no current-context; pass --context (contexts: x)",
    );
  });

  it("names a current-context or --context that is not in the kubeconfig", async () => {
    const file = await kubeconfigFile("stale-current.yaml", { currentContext: "gone" });
    expect(loadError(() => UserCluster.load({ kubeconfig: file }))).toBe(
      "the kubeconfig's current-context: context was not found for specified context: gone (contexts: x); pass --context with one of them",
    );
    expect(loadError(() => UserCluster.load({ kubeconfig: file, context: "nope" }))).toBe(
      '--context "nope": context was not found for specified context: nope (contexts: x); pass --context with one of them',
    );
  });

  it("names the cluster a context points at that the kubeconfig lacks", async () => {
    const file = await kubeconfigFile("missing-cluster.yaml", {
      currentContext: "x",
      contexts: [{ name: "x", cluster: "deleted", user: "u" }],
    });
    expect(loadError(() => UserCluster.load({ kubeconfig: file }))).toBe(
      'invalid configuration: cluster "deleted" was not found for context "x"',
    );
  });

  it("names the user a context points at that the kubeconfig lacks", async () => {
    const file = await kubeconfigFile("missing-user.yaml", {
      currentContext: "x",
      contexts: [{ name: "x", cluster: "c", user: "nobody" }],
    });
    expect(loadError(() => UserCluster.load({ kubeconfig: file }))).toBe(
      'invalid configuration: user "nobody" was not found for context "x"',
    );
  });

  it("says no configuration has been provided when no kubeconfig exists", () => {
    const missing = join(dir, "absent", "config");
    expect(loadError(() => UserCluster.load({ kubeconfig: missing }))).toBe(
      `invalid configuration: no configuration has been provided (no kubeconfig at ${missing}): pass --kubeconfig or set KUBECONFIG`,
    );
    expect(loadError(() => UserCluster.load({}, { KUBECONFIG: `${missing}:${missing}2` }))).toMatch(
      /^invalid configuration: no configuration has been provided \(no kubeconfig at .*absent\/config, .*absent\/config2\)/,
    );
  });

  it("merges KUBECONFIG's files as kubectl does: missing ones skipped, the first current-context wins", async () => {
    const first = await kubeconfigFile("first.yaml", { currentContext: "x" });
    const second = await kubeconfigFile("second.yaml", {
      currentContext: "y",
      clusters: ["d"],
      contexts: [{ name: "y", cluster: "d", user: "u" }],
    });
    const cluster = UserCluster.load(
      {},
      { KUBECONFIG: [join(dir, "absent"), first, second].join(":") },
    );
    expect(cluster.server).toBe("https://c.example.com:6443");
    expect(UserCluster.load({ context: "y" }, { KUBECONFIG: `${first}:${second}` }).server).toBe(
      "https://d.example.com:6443",
    );
  });

  it("names a file that does not parse", async () => {
    const file = join(dir, "broken.yaml");
    await writeFile(file, "clusters:\n- name: c\n  cluster: {}\n");
    expect(loadError(() => UserCluster.load({ kubeconfig: file }))).toBe(
      `kubeconfig ${file} could not be read: clusters[0].cluster.server is missing`,
    );
  });
});
