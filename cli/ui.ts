/**
 * How commands talk to a person or a script: a task list with progress and timings (listr2) in
 * text mode, one JSON document on stdout with `--output json`, and exit codes that mean something.
 */
import { createInterface } from "node:readline/promises";
import { Listr, PRESET_TIMER } from "listr2";
import { sanitize } from "../functions/core/sanitize.ts";
import { InputError } from "./core/inputs.ts";

export type OutputFormat = "text" | "json";

export const EXIT_OK = 0;
/** A problem was found: a check failed, something could not be reached or changed. */
export const EXIT_PROBLEM = 1;
/** The command line itself is wrong. */
export const EXIT_USAGE = 2;

/** A problem the command found (not a bug): exit 1 with this one-line message. */
export class Problem extends Error {
  override readonly name = "Problem";
}

export interface Step<Context> {
  readonly title: string;
  /** Returns a short outcome for the summary ("3 created, 2 unchanged"). */
  readonly run: (context: Context, progress: (text: string) => void) => Promise<string>;
}

export interface StepRecord {
  readonly title: string;
  readonly outcome: string;
  readonly ms: number;
}

/** A step failed: carries what was done before it, so the message can say what a re-run resumes. */
export class StepFailure extends Error {
  override readonly name = "StepFailure";
  readonly completed: readonly StepRecord[];
  readonly step: string;
  constructor(step: string, completed: readonly StepRecord[], cause: unknown) {
    super((cause as Error).message ?? String(cause), { cause });
    this.step = step;
    this.completed = completed;
  }
}

/** Runs steps in order with a task list (none when `silent`), stopping at the first failure. */
async function runSteps<Context>(
  context: Context,
  steps: readonly Step<Context>[],
  silent: boolean,
): Promise<StepRecord[]> {
  const completed: StepRecord[] = [];
  const list = new Listr<Context>(
    steps.map((step) => ({
      title: step.title,
      task: async (ctx, task) => {
        const started = performance.now();
        try {
          const outcome = await step.run(ctx, (text) => {
            // Progress repeats API-server errors, which can quote a webhook URL and its token.
            task.output = sanitize(scrub(text), 2048);
          });
          completed.push({
            title: step.title,
            outcome,
            ms: Math.round(performance.now() - started),
          });
          task.title = `${step.title}: ${outcome}`;
        } catch (error) {
          const failure = new StepFailure(step.title, [...completed], error);
          // listr2 prints the message itself: it must be scrubbed too.
          failure.message = sanitize(scrub(failure.message), 2048);
          throw failure;
        }
      },
    })),
    {
      concurrent: false,
      exitOnError: true,
      registerSignalListeners: false,
      silentRendererCondition: silent,
      rendererOptions: { timer: PRESET_TIMER, collapseErrors: false },
      fallbackRendererOptions: { timer: PRESET_TIMER },
    },
  );
  await list.run(context);
  return completed;
}

/** A result an earlier step set; missing only if the steps are wired wrong. */
export function need<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("internal: a previous step did not set its result");
  return value;
}

/** Where a command's output goes: the process's streams, or a test's. */
export interface OutputStreams {
  readonly stdout: { write(text: string): unknown };
}

/**
 * How a command shows what it did, chosen once from `--output`: a task list and text for people,
 * or no task list and one JSON document for scripts.
 */
export interface Printer {
  readonly format: OutputFormat;
  /** The command's result: the document as JSON, or the text a person reads. */
  result(document: unknown, text: () => string): void;
  /** Text that is itself the output (manifests for a pipe), whatever the format. */
  write(text: string): void;
  /** Runs the steps, showing the task list unless the format is JSON or `quiet`. */
  steps<Context>(
    context: Context,
    steps: readonly Step<Context>[],
    quiet?: boolean,
  ): Promise<StepRecord[]>;
}

export function printerFor(format: OutputFormat, streams: OutputStreams): Printer {
  return {
    format,
    result: (document, text) =>
      streams.stdout.write(format === "json" ? `${JSON.stringify(document, null, 2)}\n` : text()),
    write: (text) => streams.stdout.write(text),
    steps: (context, steps, quiet = false) => runSteps(context, steps, quiet || format === "json"),
  };
}

export function exitCodeFor(error: unknown): number {
  const cause = error instanceof StepFailure ? error.cause : error;
  return cause instanceof InputError ? EXIT_USAGE : EXIT_PROBLEM;
}

const secrets = new Set<string>();

/**
 * Registers a value that must never be printed (a webhook token, a ServiceAccount token): the API
 * server's error messages can echo a request, and with it a webhook URL.
 */
export function redact(secret: string): void {
  if (secret.length >= 16) secrets.add(secret);
}

export function scrub(text: string): string {
  let clean = text;
  for (const secret of secrets) clean = clean.replaceAll(secret, "<redacted>");
  return clean;
}

/** One line for the person: what failed, what was already done, and that re-running resumes. */
export function describeFailure(error: unknown): string {
  // An API server's words reach the terminal here: each line printable and bounded.
  return scrub(failureText(error))
    .split("\n")
    .map((line) => sanitize(line, 2048))
    .join("\n");
}

function failureText(error: unknown): string {
  if (!(error instanceof StepFailure)) return (error as Error).message ?? String(error);
  const cause = error.cause as Error;
  const done = error.completed.map((step) => `${step.title} (${step.outcome})`);
  if (cause instanceof InputError || done.length === 0) return cause.message;
  return `${error.step} failed: ${cause.message}\n  already done: ${done.join("; ")}\n  re-run the same command to resume`;
}

/** Asks a yes/no question on the terminal; without one, the caller must pass --yes. */
export async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY)
    throw new InputError(`${question} Not a terminal: pass --yes to confirm`);
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    prompt.close();
  }
}

/** `1h 05m`, `4m 10s`, `-2m 00s` (already expired). */
export function formatDuration(ms: number): string {
  const sign = ms < 0 ? "-" : "";
  const seconds = Math.floor(Math.abs(ms) / 1000);
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (hours > 0) return `${sign}${hours}h ${String(minutes).padStart(2, "0")}m`;
  return `${sign}${minutes}m ${String(seconds % 60).padStart(2, "0")}s`;
}

/** A plain aligned table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
