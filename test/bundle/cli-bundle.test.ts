/**
 * The built CLI, its two files alone in an empty directory, renders a cluster's objects: nothing
 * it runs reads a file the package does not ship (the objects are built in code, k8s/).
 */
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { stringify } from "yaml";
import { buildCli } from "../../scripts/build.ts";

let workDir: string;
let lonely: string;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "ecr-anywhere-cli-bundle-"));
  await buildCli(join(workDir, "dist"));
  lonely = join(workDir, "alone", "cli");
  await mkdir(lonely, { recursive: true });
  for (const file of await readdir(join(workDir, "dist", "cli")))
    await copyFile(join(workDir, "dist", "cli", file), join(lonely, file));
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

it("renders onboard --dry-run from its own two files, with no template beside it", async () => {
  expect((await readdir(lonely)).sort()).toEqual(["ecr-anywhere.mjs", "main.mjs"]);
  const kubeconfigPath = join(workDir, "kubeconfig");
  await writeFile(
    kubeconfigPath,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "c",
          cluster: {
            server: "https://api.example.com:6443",
            "certificate-authority-data": Buffer.from("CA").toString("base64"),
          },
        },
      ],
      users: [{ name: "u", user: { token: "t" } }],
      contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
      "current-context": "c",
    }),
  );
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      join(lonely, "ecr-anywhere.mjs"),
      "--kubeconfig",
      kubeconfigPath,
      "-o",
      "json",
      "onboard",
      "bundle",
      "--registries",
      "123456789012.dkr.ecr.us-east-1.amazonaws.com",
      "--namespaces",
      "apps",
      "--webhook-url",
      "https://abc.lambda-url.us-east-1.on.aws/",
      "--record-key-arn",
      "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
      "--allowed-source-cidrs",
      "203.0.113.0/24",
      "--dry-run",
    ],
    // Run from an empty directory with no module paths: only the bundle's own files exist.
    { cwd: lonely, env: { PATH: process.env.PATH ?? "" }, timeout: 30_000 },
  );
  const { manifests } = JSON.parse(stdout) as {
    manifests: Record<string, { kind: string; metadata: { name: string } }[]>;
  };
  const kinds = (file: string) => (manifests[file] ?? []).map((object) => object.kind);
  expect(kinds("rbac.yaml")).toEqual(
    expect.arrayContaining([
      "ServiceAccount",
      "ClusterRole",
      "RoleBinding",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicyBinding",
    ]),
  );
  expect(kinds("webhook.yaml")).toEqual(["MutatingWebhookConfiguration"]);
  // And no template is looked for at run time: the names of the old YAML files are not in it.
  const bundle = await readFile(join(lonely, "main.mjs"), "utf8");
  expect(bundle).not.toMatch(/refresher-rbac\.yaml|mutating-webhook-configuration\.yaml/);
});
