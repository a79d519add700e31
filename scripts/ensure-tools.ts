/**
 * The test bed's tools, set up if missing (testbed/tools.ts), from the command line:
 *
 *   node scripts/ensure-tools.ts go      prints the `go` to build with (scripts/build-control-plane.sh)
 *   node scripts/ensure-tools.ts check   sets up both, then shows `go version` and moto_server answering
 */
import { execFileSync } from "node:child_process";
import { startMoto } from "../testbed/moto.ts";
import { ensureGo, ensureMotoServer } from "../testbed/tools.ts";

const [what] = process.argv.slice(2);
if (what === "go") {
  process.stdout.write(`${await ensureGo()}\n`);
} else if (what === "check") {
  const go = await ensureGo();
  process.stdout.write(
    `go: ${go}: ${execFileSync(go, ["version"], { env: { ...process.env, GOTOOLCHAIN: "local" } })}`,
  );
  process.stdout.write(`moto_server: ${(await ensureMotoServer()).join(" ")}\n`);
  const moto = await startMoto();
  const answer = await fetch(`${moto.url}/moto-api/`);
  process.stdout.write(`moto_server: ${moto.url}/moto-api/ answers ${answer.status}\n`);
  await moto.stop();
  if (!answer.ok) process.exitCode = 1;
} else {
  process.stderr.write("usage: node scripts/ensure-tools.ts go|check\n");
  process.exitCode = 2;
}
