/** Bundles each Lambda into dist/<function>/index.mjs with esbuild: one self-contained ESM file. */
import { mkdir, rm, stat } from "node:fs/promises";
import { build } from "esbuild";
import {
  BUNDLE_ALIASES,
  BUNDLE_MAIN_FIELDS,
  BUNDLE_REQUIRE_SHIM,
  BUNDLE_TARGET,
} from "../infra/bundling.ts";

export const LAMBDA_ENTRY_POINTS = {
  webhook: "functions/webhook/handler.ts",
  refresher: "functions/refresher/handler.ts",
  "refresher-worker": "functions/refresher/worker-handler.ts",
  "broker-rotation": "functions/broker-rotation/handler.ts",
} as const;

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

if (import.meta.main) {
  const sizes = await buildLambdas();
  for (const [name, bytes] of Object.entries(sizes))
    console.log(`dist/${name}/index.mjs ${bytes} bytes`);
}
