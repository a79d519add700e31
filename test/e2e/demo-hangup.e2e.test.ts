/**
 * `npm run demo` left running in a terminal, then the terminal closed (or the demo sent SIGHUP):
 * nothing it started may outlive it (etcd and kube-apiserver run in sessions of their own, so the
 * terminal's hangup never reaches them), and no temporary file may stay behind, above all not the
 * system:masters kubeconfig. The demo runs on a real pseudo-terminal (util-linux `script`), so it
 * waits as it does for a person, with a TMPDIR of its own that must be empty afterwards.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const repo = join(import.meta.dirname, "../..");

interface RunningDemo {
  readonly terminal: ChildProcess;
  readonly tmp: string;
  /** Every process the demo had started, once it was running. */
  readonly started: Map<number, string>;
  output(): string;
}

let demo: RunningDemo | undefined;

afterEach(async () => {
  // Whatever happened, the test leaves nothing running either.
  // etcd and kube-apiserver have sessions of their own: the terminal's group does not hold them.
  for (const pid of [-(demo?.terminal.pid ?? 0), ...(demo?.started.keys() ?? [])])
    if (pid !== 0)
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
  if (demo) await rm(demo.tmp, { recursive: true, force: true });
  demo = undefined;
});

/** Starts the demo on a pseudo-terminal and waits until it keeps running for the user's kubectl. */
async function startDemo(): Promise<RunningDemo> {
  const tmp = await mkdtemp(join(tmpdir(), "ecr-anywhere-demo-hangup-"));
  // `script` gives the demo a real terminal; `exec` makes the demo its session's leader, as a
  // shell's foreground job would be the one the terminal hangs up on.
  const terminal = spawn(
    "script",
    [
      "--quiet",
      "--flush",
      "--return",
      "--command",
      `exec ${process.execPath} scripts/demo.ts`,
      "/dev/null",
    ],
    {
      cwd: repo,
      env: { ...process.env, TMPDIR: tmp },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    },
  );
  let output = "";
  terminal.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  terminal.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const running: RunningDemo = { terminal, tmp, started: new Map(), output: () => output };
  demo = running;
  await until(
    () => output.includes("Everything keeps running."),
    240_000,
    () => `the demo never reached "Everything keeps running.":\n${output.slice(-3000)}`,
  );
  for (const [pid, command] of descendants(terminal.pid ?? 0)) running.started.set(pid, command);
  return running;
}

/** Every process below `root`, read from /proc (etcd and kube-apiserver included: setsid keeps the parent). */
function descendants(root: number): Map<number, string> {
  const parents = new Map<number, number>();
  const names = new Map<number, string>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // "pid (comm) state ppid …": comm may hold spaces and parentheses.
      const afterName = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parents.set(pid, Number(afterName[1]));
      names.set(pid, readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim());
    } catch {
      // exited while we looked
    }
  }
  const found = new Map<number, string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, parent] of parents)
      if (!found.has(pid) && (parent === root || found.has(parent))) {
        found.set(pid, names.get(pid) ?? "");
        grew = true;
      }
  }
  return found;
}

/** Alive and not a zombie waiting to be reaped. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function until(condition: () => boolean, ms: number, message: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(message());
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function filesUnder(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String) : [];
}

describe("the demo, when its terminal goes away", () => {
  it.each([
    ["the terminal is closed", "close"],
    ["the demo is sent SIGHUP", "sighup"],
  ] as const)(
    "leaves no process and no file behind when %s",
    async (_case, how) => {
      const running = await startDemo();
      const started = running.started;
      const commands = [...started.values()].join("\n");
      // What must be stopped is really there: etcd, kube-apiserver, moto, the webhook.
      // moto runs as moto_server from PATH, or as `python -m moto.server` from the test bed's venv.
      for (const name of [
        /\/etcd/,
        /\/kube-apiserver/,
        /moto[_.]server/,
        /functions\/local\/serve\.ts/,
      ])
        expect(commands).toMatch(name);
      expect(filesUnder(running.tmp).some((file) => file.endsWith("admin.kubeconfig"))).toBe(true);

      if (how === "close") {
        // Killing the terminal emulator closes the pseudo-terminal: the kernel hangs up on the demo.
        running.terminal.kill("SIGKILL");
      } else {
        const [demoPid] =
          [...started].find(([, command]) => command.includes("scripts/demo.ts")) ?? [];
        expect(demoPid).toBeDefined();
        process.kill(demoPid ?? 0, "SIGHUP");
        await until(
          () =>
            /SIGHUP: stopped etcd, kube-apiserver, moto.*removed the demo's temporary files/s.test(
              running.output(),
            ),
          60_000,
          () => `the demo did not say it cleaned up:\n${running.output().slice(-2000)}`,
        );
      }

      await until(
        () => [...started.keys()].every((pid) => !alive(pid)),
        60_000,
        () =>
          `still running after the hangup:\n${[...started]
            .filter(([pid]) => alive(pid))
            .map(([pid, command]) => `${pid} ${command}`)
            .join("\n")}`,
      );
      expect(filesUnder(running.tmp)).toEqual([]);
    },
    360_000,
  );
});
