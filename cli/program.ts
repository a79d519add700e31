/**
 * The `ecr-anywhere` command line: global flags, and the commands, each of which registers its
 * own flags in commands/. Exit codes: 0 ok, 1 a problem found, 2 usage.
 */
import { Command, Option } from "@commander-js/extra-typings";
import { DEFAULT_LABEL_PREFIX, DEFAULT_RECORDS_NAME } from "../functions/core/contract.ts";
import packageJson from "../package.json" with { type: "json" };
import { newDoctorCommand } from "./commands/doctor.ts";
import { newOffboardCommand } from "./commands/offboard.ts";
import { newOnboardCommand } from "./commands/onboard.ts";
import { newPreflightCommand } from "./commands/preflight.ts";
import { newPutRecordCommand } from "./commands/put-record.ts";
import { newRotateTokenCommand } from "./commands/rotate-token.ts";
import { newStatusCommand } from "./commands/status.ts";
import { parseRecordsName } from "./core/inputs.ts";
import { parseRegion } from "./core/regions.ts";
import { defaultFactory, type MakeFactory } from "./factory.ts";
import { checked } from "./flags.ts";

/** The whole program; tests pass a factory of stand-ins. */
export function buildProgram(makeFactory: MakeFactory = defaultFactory) {
  const program = new Command("ecr-anywhere")
    .description(
      "Fresh Amazon ECR pull credentials for any Kubernetes cluster: onboard clusters, rotate their webhook tokens, see their state.",
    )
    .version(packageJson.version, "-V, --version", "the CLI's version")
    .showHelpAfterError("(add --help for usage)")
    .exitOverride()
    .option(
      "--kubeconfig <file>",
      "kubeconfig of the cluster (default: KUBECONFIG, then ~/.kube/config)",
    )
    .option("--context <name>", "kubeconfig context to use (default: its current-context)")
    .addOption(
      new Option("-o, --output <format>", "text for people, json for scripts")
        .choices(["text", "json"] as const)
        .default("text" as const),
    )
    .addOption(
      new Option(
        "--label-prefix <prefix>",
        "prefix of labels and annotations (the stack's labelPrefix)",
      ).default(undefined, DEFAULT_LABEL_PREFIX),
    )
    .addOption(
      new Option(
        "--records <name>",
        "records name N of the cluster record tables <N>-webhook and <N>-refresher (the stack's ClusterRecords)",
      )
        .argParser(checked(parseRecordsName))
        .default(undefined, DEFAULT_RECORDS_NAME),
    )
    .option(
      "--region <region>",
      "AWS region of the stack, e.g. us-east-1 (default: AWS_REGION, then the profile's)",
      checked(parseRegion),
    )
    .option("--profile <name>", "AWS named profile (default: AWS_PROFILE, then default)");
  const factory = () => makeFactory(program.opts());
  // Subcommands inherit the root's error handling: usage errors surface as CommanderError.
  for (const command of [
    newOnboardCommand(factory),
    newRotateTokenCommand(factory),
    newStatusCommand(factory),
    newOffboardCommand(factory),
    newPutRecordCommand(factory),
    newPreflightCommand(factory),
    newDoctorCommand(factory),
  ])
    program.addCommand(command.exitOverride().showHelpAfterError("(add --help for usage)"));
  return program;
}
