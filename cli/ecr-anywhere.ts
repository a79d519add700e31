#!/usr/bin/env node
/**
 * Entry point of the `ecr-anywhere` CLI (also `kubectl ecr-anywhere`, through the
 * `kubectl-ecr_anywhere` link). Turns every failure into one line and a meaningful exit code; a
 * stack trace only with ECR_ANYWHERE_DEBUG=1.
 */
import { CommanderError } from "@commander-js/extra-typings";
import { PlanInterrupted } from "./commands/plan-run.ts";
import { buildProgram } from "./program.ts";
import { describeFailure, EXIT_USAGE, exitCodeFor } from "./ui.ts";

const program = buildProgram();
try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // commander has printed the message or the help already.
    process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
  } else {
    const json = program.opts().output === "json";
    const message = describeFailure(error);
    // An interrupted plan also as data: what a script (or a fleet run) needs to finish the job.
    const plan =
      error instanceof PlanInterrupted
        ? { done: error.done, left: error.left, finish: error.finish }
        : {};
    if (json)
      process.stdout.write(`${JSON.stringify({ ok: false, error: message, ...plan }, null, 2)}\n`);
    process.stderr.write(`ecr-anywhere: ${message}\n`);
    if (process.env.ECR_ANYWHERE_DEBUG === "1") console.error(error);
    process.exitCode = exitCodeFor(error);
  }
}
