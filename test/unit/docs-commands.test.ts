/**
 * What the user pages tell a package user to run must work with the package: they name no file
 * that only a clone of the repository has, and onboard-platforms' render commands pass the CLI's
 * own checks (run as documented, as a dry run, from a kubeconfig like k3s writes).
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");
/** The pages a user of the package reads; development, performance and fuzzing are a developer's. */
const USER_PAGES = [
  "README.md",
  "docs/onboard.md",
  "docs/onboard-gitops.md",
  "docs/onboard-platforms.md",
  "docs/deploy.md",
  "docs/construct.md",
  "docs/operate.md",
  "docs/troubleshooting.md",
  "docs/security.md",
  "docs/network.md",
];
const REPOSITORY_PATH = /`(?:\.\/)?(?:test|scripts|functions|testbed|infra|cli|k8s)\/[^`]*`/g;

describe("user pages", () => {
  it.each(USER_PAGES)("%s names no repository-only file, except as a clone's", async (page) => {
    const lines = (await readFile(join(root, page), "utf8")).split("\n");
    const named = lines.flatMap((line, index) =>
      /\bclone\b/.test(line)
        ? []
        : [...line.matchAll(REPOSITORY_PATH)].map((m) => `${index + 1}: ${m[0]}`),
    );
    expect(named).toEqual([]);
  });
});

/** Each `ecr-anywhere onboard` command in the page's shell blocks, continuation lines joined. */
function onboardCommands(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");
  return blocks.flatMap((block) =>
    block
      .replace(/\\\n\s*/g, " ")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line.startsWith("ecr-anywhere onboard ")),
  );
}

describe("onboard-platforms' render commands", () => {
  let dir: string;
  let commands: string[];
  const CA = Buffer.from("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n").toString(
    "base64",
  );
  const admissionConfig = [
    "apiVersion: apiserver.config.k8s.io/v1",
    "kind: AdmissionConfiguration",
    "plugins:",
    "- name: PodSecurity",
    "  configuration:",
    "    apiVersion: pod-security.admission.config.k8s.io/v1",
    "    kind: PodSecurityConfiguration",
    "    defaults: { enforce: restricted, enforce-version: latest }",
    "",
  ].join("\n");

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "ecr-anywhere-docs-"));
    // k3s and RKE2 write their kubeconfig with the loopback address; kubeadm's names the endpoint.
    for (const [name, server] of [
      ["rancher.kubeconfig", "https://127.0.0.1:6443"],
      ["kubeadm.kubeconfig", "https://k8s.example.com:6443"],
    ] as const)
      await writeFile(
        join(dir, name),
        `apiVersion: v1\nkind: Config\nclusters: [{name: default, cluster: {server: "${server}", certificate-authority-data: ${CA}}}]\nusers: [{name: default, user: {token: t}}]\ncontexts: [{name: default, context: {cluster: default, user: default}}]\ncurrent-context: default\n`,
      );
    for (const file of ["psa.yaml", "rke2-pss.yaml"])
      await writeFile(join(dir, file), admissionConfig);
    commands = onboardCommands(await readFile(join(root, "docs/onboard-platforms.md"), "utf8"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("are there: k3s, RKE2 and kubeadm", () => {
    expect(commands).toHaveLength(3);
  });

  it("each pass the CLI's checks as written, placeholders filled", async () => {
    for (const command of commands) {
      const args = command
        .replace("<hosts>", "123456789012.dkr.ecr.us-east-1.amazonaws.com")
        .replace("<names>", "apps")
        .replace(
          "https://<server address the refresher reaches>:6443",
          "https://k8s.example.com:6443",
        )
        .split(/\s+/)
        .slice(1);
      expect(args.join(" ")).not.toMatch(/[<>]/);
      // The stack's outputs, which a dry run would read from CloudFormation, given as flags.
      const stack = [
        "--webhook-url",
        "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws/",
        "--record-key-arn",
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "--refresher-network",
        "static-egress",
      ];
      const kubeconfig = join(
        dir,
        command.includes("rancher") ? "rancher.kubeconfig" : "kubeadm.kubeconfig",
      );
      const run = await promisify(execFile)(
        process.execPath,
        [join(root, "cli/ecr-anywhere.ts"), ...args, ...stack],
        { cwd: dir, env: { PATH: process.env.PATH ?? "", HOME: dir, KUBECONFIG: kubeconfig } },
      ).catch((error: { stderr: string }) => ({ stdout: "", stderr: error.stderr }));
      expect(run.stderr, command).toBe("");
      expect(run.stdout).toContain("api-server/admission.yaml");
      await rm(join(dir, "onprem-1"), { recursive: true, force: true });
    }
  });

  it("install from the directory they render into", async () => {
    const page = await readFile(join(root, "docs/onboard-platforms.md"), "utf8");
    const rendered = new Set(commands.map((command) => /--out (\S+)/.exec(command)?.[1]));
    const installed = new Set(
      [...page.matchAll(/install -m 0600 (\S+)\/api-server\//g)].map((match) => match[1]),
    );
    expect([...installed]).toEqual([...rendered]);
  });
});
