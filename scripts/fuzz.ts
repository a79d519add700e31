/**
 * Coverage-guided fuzzing of the webhook's whole request path and the record and kubeconfig
 * parsers, for a time budget (`test/fuzz/request-path.ts` holds the target and its properties).
 *
 * The loop is libFuzzer's, with V8's own block coverage as the guide: it starts from the seed
 * corpus (the recorded real AdmissionReviews), and each round either mutates a corpus entry or
 * draws a fresh input (fast-check), runs it, and keeps it in the corpus when it executed a block
 * of `functions/` no input had reached before. A broken property prints the input and exits 1.
 *
 *   npm run fuzz [-- --seconds 60] [-- --seed 42] [-- --corpus DIR]
 *
 * Why not Jazzer.js: its prebuilt native fuzzer needs glibc >= 2.38 and its package has no sources
 * to rebuild from; these machines have 2.36 (see docs/fuzzing.md).
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    seed: { type: "string" },
    corpus: { type: "string" },
  },
});
const budgetMs = Math.max(1, Number(values.seconds)) * 1000;
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);

// Coverage must be on before the target is compiled, or its blocks are not counted.
const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.startPreciseCoverage", { callCount: false, detailed: true });
const { checkParsers, checkRequest } = await import("../test/fuzz/request-path.ts");
const { body, draw, KUBECONFIG_DANGEROUS_KEYS, kubeconfigText, mutate, request, seedCorpus } =
  await import("../test/fuzz/inputs.ts");
type FuzzedRequest = Parameters<typeof checkRequest>[0];

const PROJECT_CODE = `${join(import.meta.dirname, "../functions")}/`;
/** Functions and blocks of the project's code some input has executed. */
const covered = new Set<string>();
/** Blocks V8 has reported per function: a block it stops reporting as unexecuted was executed. */
const knownBlocks = new Map<string, Set<string>>();

/**
 * How many functions and blocks of the project's code the last input executed that no input had
 * before. V8's binary block coverage lists a function's range, then only the nested ranges whose
 * count differs from it: in an executed function, the blocks that did not run.
 */
async function newCoverage(): Promise<number> {
  const { result } = await session.post("Profiler.takePreciseCoverage");
  let found = 0;
  const cover = (key: string) => {
    if (covered.has(key)) return;
    covered.add(key);
    found++;
  };
  for (const script of result) {
    if (!script.url.includes(PROJECT_CODE)) continue;
    for (const fn of script.functions) {
      const [whole, ...blocks] = fn.ranges;
      if (!whole || whole.count === 0) continue;
      const fnKey = `${script.url}:${whole.startOffset}`;
      cover(fnKey);
      const notRun = new Set<string>();
      for (const block of blocks) {
        const key = `${fnKey}:${block.startOffset}-${block.endOffset}`;
        if (block.count === 0) notRun.add(key);
        else cover(key);
      }
      const known = knownBlocks.get(fnKey) ?? new Set<string>();
      for (const key of known) if (!notRun.has(key)) cover(key);
      for (const key of notRun) known.add(key);
      knownBlocks.set(fnKey, known);
    }
  }
  return found;
}

// A small seeded generator, so a run can be repeated with its seed.
let state = seed >>> 0 || 1;
function next(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return state >>> 0;
}

// The webhook logs to stdout (info) and stderr (warnings, errors): capture both per run (checked
// for secrets), and keep the terminal quiet.
let captured = "";
const originals = { stdout: process.stdout.write, stderr: process.stderr.write };
const capture = ((chunk: string | Uint8Array) => {
  captured += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
  return true;
}) as typeof process.stdout.write;
const quiet = () => {
  process.stdout.write = capture;
  process.stderr.write = capture;
};
const loud = () => {
  process.stdout.write = originals.stdout;
  process.stderr.write = originals.stderr;
};

const corpus: FuzzedRequest[] = seedCorpus();
if (values.corpus) {
  await mkdir(values.corpus, { recursive: true });
  for (const name of await readdir(values.corpus))
    corpus.push(JSON.parse(await readFile(join(values.corpus, name), "utf8")) as FuzzedRequest);
}
const outcomes = new Map<string, number>();
let executions = 0;
let lastNewAtMs = 0;
const started = Date.now();
let failure: { input: FuzzedRequest; parserInput: string; error: unknown } | undefined;

quiet();
try {
  while (Date.now() - started < budgetMs && failure === undefined) {
    const roll = next();
    const fresh = roll % 3 === 0 || corpus.length === 0;
    const input: FuzzedRequest = fresh
      ? draw(request, next())
      : mutate(
          corpus[next() % corpus.length] as FuzzedRequest,
          corpus[next() % corpus.length] as FuzzedRequest,
          next(),
        );
    // A third of the parser inputs are record kubeconfigs with extra keys in random places.
    const parserInput =
      roll % 3 === 0
        ? input.body
        : roll % 3 === 1
          ? draw(kubeconfigText, next())
          : draw(body, next());
    captured = "";
    try {
      const outcome = await checkRequest(input, () => captured);
      checkParsers(parserInput, KUBECONFIG_DANGEROUS_KEYS);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    } catch (error) {
      failure = { input, parserInput, error };
    }
    executions++;
    if ((await newCoverage()) > 0) {
      corpus.push(input);
      lastNewAtMs = Date.now() - started;
      if (values.corpus)
        await writeFile(join(values.corpus, `${executions}.json`), JSON.stringify(input));
    }
  }
} finally {
  loud();
  session.disconnect();
}

const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(
  `fuzz: ${executions} executions in ${seconds} s (seed ${seed}); corpus ${corpus.length} inputs; ${covered.size} functions and blocks of functions/ covered, the last new one at ${(lastNewAtMs / 1000).toFixed(1)} s`,
);
console.log(
  `  outcomes: ${[...outcomes]
    .sort((a, b) => b[1] - a[1])
    .map(([outcome, count]) => `${outcome} ${count}`)
    .join(", ")}`,
);
if (failure) {
  console.error(
    `property broken: ${failure.error instanceof Error ? failure.error.message : String(failure.error)}`,
  );
  console.error(`input: ${JSON.stringify(failure.input)}`);
  console.error(`parser input: ${JSON.stringify(failure.parserInput)}`);
  process.exit(1);
}
