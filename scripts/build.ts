/**
 * `npm run build`: everything the package ships, in dist/.
 * - each Lambda, bundled into dist/<function>/index.mjs: one self-contained ESM file;
 * - the CLI, bundled into dist/cli/ecr-anywhere.mjs: one ESM file with a shebang, which runs on
 *   the Node versions package.json's `engines` names, with nothing else installed;
 * - the construct library, dist/lib/index.mjs (aws-cdk-lib and constructs left to the user's app,
 *   everything else inlined), with its declarations in dist/types/ (TypeScript's own emit).
 */
import { execFile } from "node:child_process";
import { chmod, mkdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { type BuildOptions, build } from "esbuild";
import {
  BUNDLE_ALIASES,
  BUNDLE_MAIN_FIELDS,
  BUNDLE_REQUIRE_SHIM,
  BUNDLE_TARGET,
  LAMBDA_ENTRY_POINTS,
} from "../infra/bundling.ts";
import packageJson from "../package.json" with { type: "json" };

const ROOT = join(import.meta.dirname, "..");

export async function buildLambdas(outRoot = "dist"): Promise<Record<string, number>> {
  await rm(outRoot, { recursive: true, force: true });
  const sizes: Record<string, number> = {};
  for (const [name, entry] of Object.entries(LAMBDA_ENTRY_POINTS)) {
    const outdir = `${outRoot}/${name}`;
    await mkdir(outdir, { recursive: true });
    const result = await build({
      entryPoints: [entry],
      outfile: `${outdir}/index.mjs`,
      bundle: true,
      platform: "node",
      mainFields: BUNDLE_MAIN_FIELDS,
      target: BUNDLE_TARGET,
      format: "esm",
      minify: true,
      sourcemap: "linked",
      legalComments: "none",
      metafile: true,
      banner: { js: BUNDLE_REQUIRE_SHIM },
      alias: BUNDLE_ALIASES,
      logLevel: "warning",
    });
    sizes[name] = (await stat(`${outdir}/index.mjs`)).size;
    if (process.env.BUNDLE_ANALYSIS) {
      const { analyzeMetafile } = await import("esbuild");
      console.log(await analyzeMetafile(result.metafile));
    }
  }
  return sizes;
}

/** The oldest Node the package promises (`engines`: ">=22.19" → "22.19"). */
export function oldestNode(engines: string): string {
  const match = /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(engines.trim());
  if (match === null) throw new Error(`engines.node must read ">=<version>" (got "${engines}")`);
  return match[1] ?? "";
}

/**
 * The CLI's entry: on a Node older than `engines`, one line saying so. It is a file of its own,
 * importing the bundle only once the version passed: a module's static imports are resolved before
 * its first statement runs, so a guard inside the bundle would come too late for a Node that lacks
 * a built-in export the bundle imports (Node 18 has no `styleText` in node:util).
 */
function cliEntry(oldest: string): string {
  const [major = 0, minor = 0] = oldest.split(".").map(Number);
  return [
    "#!/usr/bin/env node",
    "// ecr-anywhere's CLI: checks the Node version, then runs the bundle.",
    'const [major, minor] = process.versions.node.split(".").map(Number);',
    `if (major < ${major} || (major === ${major} && minor < ${minor})) {`,
    `  process.stderr.write("ecr-anywhere: needs Node >= ${oldest} (this is " + process.version + ")\\n");`,
    "  process.exit(2);",
    "}",
    `await import("./${CLI_BUNDLE}");`,
    "",
  ].join("\n");
}

const CLI_BUNDLE = "main.mjs";

/** Options both the CLI and the library bundle share: ESM for the users' Node, readable. */
function packageBundle(): BuildOptions {
  return {
    bundle: true,
    platform: "node",
    format: "esm",
    target: `node${oldestNode(packageJson.engines.node)}`,
    mainFields: BUNDLE_MAIN_FIELDS,
    legalComments: "none",
    logLevel: "warning",
  };
}

/**
 * The CLI: every dependency inlined, so `npm i -g ecr-anywhere` installs two files and no tree:
 * the version-checking entry `ecr-anywhere.mjs` (the `bin`) and the bundle it imports.
 */
export async function buildCli(outRoot = "dist"): Promise<string> {
  const outfile = join(outRoot, "cli", "ecr-anywhere.mjs");
  await build({
    ...packageBundle(),
    entryPoints: [join(ROOT, "cli", "ecr-anywhere.ts")],
    outfile: join(outRoot, "cli", CLI_BUNDLE),
    // No source map: a user's stack trace needs ECR_ANYWHERE_DEBUG=1 anyway, and it would double
    // the package.
    minify: true,
    // CommonJS dependencies need a require() for Node built-ins.
    banner: { js: BUNDLE_REQUIRE_SHIM },
  });
  await writeFile(outfile, cliEntry(oldestNode(packageJson.engines.node)));
  await chmod(outfile, 0o755);
  return outfile;
}

/**
 * The construct library: aws-cdk-lib and constructs are the app's (one copy, or `instanceof` and
 * the construct tree break); the rest (functions/core's rules, valibot) is inlined. Not minified:
 * a user reads its stack traces.
 */
export async function buildLibrary(outRoot = "dist"): Promise<string> {
  const outfile = join(outRoot, "lib", "index.mjs");
  await build({
    ...packageBundle(),
    entryPoints: [join(ROOT, "infra", "index.ts")],
    outfile,
    external: ["aws-cdk-lib", "aws-cdk-lib/*", "constructs"],
  });
  await rm(join(outRoot, "types"), { recursive: true, force: true });
  await promisify(execFile)(
    process.execPath,
    [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.lib.json")],
    { cwd: ROOT },
  );
  return outfile;
}

if (import.meta.main) {
  const sizes = await buildLambdas();
  for (const [name, bytes] of Object.entries(sizes))
    console.log(`dist/${name}/index.mjs ${bytes} bytes`);
  for (const file of [await buildCli(), await buildLibrary()])
    console.log(`${file} ${(await stat(file)).size} bytes`);
}
