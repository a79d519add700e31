/**
 * Where a cold webhook's time goes: one new process imports the built bundle and answers its first
 * admission (against moto and the ECR stand-in over HTTPS, as `npm run bench` runs it) under V8's
 * CPU profiler; samples are mapped through the bundle's source map and summed per package or
 * project folder.
 *
 *   npm run profile:cold      (PROFILE_RUNS=5 sums several cold runs)
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { SourceMap } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loopbackServerTls } from "../functions/local/tls.ts";
import {
  admissionReview,
  clusterRecord,
  newWebhookToken,
  webhookEvent,
} from "../test/support/admission.ts";
import { localAwsEnv, putClusterRecord, recordTablesEnv } from "../testbed/aws-env.ts";
import { startEcrStandIn } from "../testbed/ecr-stand-in.ts";
import { startMoto } from "../testbed/moto.ts";
import { buildLambdas } from "./build.ts";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
    readonly columnNumber: number;
  };
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const RUNS = Number(process.env.PROFILE_RUNS ?? 5);
const work = await mkdtemp(join(tmpdir(), "ecr-anywhere-profile-"));
const { ca, server: tls } = await loopbackServerTls("ecr-anywhere-profile");
const moto = await startMoto({ tls });
const ecr = await startEcrStandIn({ tls });
try {
  await buildLambdas(join(work, "dist"));
  const bundle = join(work, "dist/webhook/index.mjs");
  const cluster = newWebhookToken();
  await putClusterRecord(
    moto.url,
    clusterRecord("profile", cluster.sha256, ["123456789012.dkr.ecr.us-east-1.amazonaws.com"]),
    { caPem: ca.cert, records: "profile" },
  );
  const env = {
    PATH: process.env.PATH ?? "",
    ...localAwsEnv({ records: moto.url, sts: moto.url, ecr: ecr.url }),
    ...recordTablesEnv("profile"),
    NODE_EXTRA_CA_CERTS: ca.certFile,
    INVOKE_QUIET: "1",
  };
  const profiles = join(work, "profiles");
  for (let run = 0; run < RUNS; run++)
    await coldRun(bundle, profiles, env, [
      webhookEvent({ clusterId: "profile", token: cluster.token, body: admissionReview() }),
    ]);
  const map = new SourceMap(JSON.parse(await readFile(`${bundle}.map`, "utf8")));
  const byPlace = new Map<string, number>();
  let totalUs = 0;
  for (const file of await readdir(profiles)) {
    const profile = JSON.parse(await readFile(join(profiles, file), "utf8")) as CpuProfile;
    const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
    profile.samples.forEach((id, index) => {
      const us = profile.timeDeltas[index] ?? 0;
      totalUs += us;
      const place = placeOf(nodes.get(id), bundle, map);
      byPlace.set(place, (byPlace.get(place) ?? 0) + us);
    });
  }
  const rows = [...byPlace].sort(([, a], [, b]) => b - a).slice(0, 15);
  console.log(
    `${RUNS} cold runs (import + first admission), ${(totalUs / 1000 / RUNS).toFixed(1)} ms of samples per run:`,
  );
  for (const [place, us] of rows)
    console.log(
      `${(us / 1000 / RUNS).toFixed(1).padStart(7)} ms  ${((us / totalUs) * 100).toFixed(1).padStart(5)} %  ${place}`,
    );
} finally {
  await ecr.stop();
  await moto.stop();
}

function coldRun(bundle: string, dir: string, env: Record<string, string>, events: unknown[]) {
  return new Promise<void>((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [
        `--cpu-prof`,
        `--cpu-prof-dir=${dir}`,
        join(import.meta.dirname, "invoke-bundle.ts"),
        bundle,
      ],
      { env, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
      (error, _stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(),
    );
    child.stdin?.end(JSON.stringify(events));
  });
}

/** A package (`@aws-sdk/client-dynamodb`), a project folder (`functions/core`), or what V8 names. */
function placeOf(node: ProfileNode | undefined, bundle: string, map: SourceMap): string {
  const frame = node?.callFrame;
  if (!frame) return "(unknown)";
  if (!frame.url) return `V8 ${frame.functionName || "(native)"}`;
  if (!frame.url.endsWith(bundle))
    return frame.url.startsWith("node:")
      ? `Node ${frame.url
          .replace(/^node:(internal\/)?/, "")
          .split("/")
          .slice(0, 2)
          .join("/")}`
      : "(the invoker script)";
  const entry = map.findEntry(frame.lineNumber, frame.columnNumber) as { originalSource?: string };
  const source = entry.originalSource ?? "";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(source)?.[1];
  if (pkg) return pkg;
  return /(functions\/[^/]+)/.exec(source)?.[1] ?? (source || "(bundle, unmapped)");
}
