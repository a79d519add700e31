/**
 * The two programs the test bed needs beyond Node.js, set up on first use so that a machine with
 * only Node.js and Python 3 runs the demo and every test: moto_server (in a virtual environment
 * from PyPI) and Go (the `golang.org/toolchain` module from the Go module proxy, as GOTOOLCHAIN
 * fetches it). Both are cached outside the repository, keyed by version, and announced as they
 * are fetched. Programs already on PATH are used when they will do.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { chmod, copyFile, mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { delimiter, dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { unzipSync } from "fflate";

/** The moto the tests are run with: `moto[server]` from PyPI, pinned so every machine gets it. */
export const MOTO_VERSION = "5.2.1";

/**
 * The Go fetched when PATH has none new enough for testbed/control-plane (a unit test holds it to
 * their go.mod files). Pinned by the SHA-256 of each platform's module zip rather than checked
 * against the checksum database at run time: verifying a sum.golang.org answer means checking its
 * signed tree head and an inclusion proof, far more code than a test bed should carry, while a
 * pin needs nothing but the zip. The pins are of the zips `go mod download` fetched and verified
 * against sum.golang.org on 2026-12-08 (h1: sums linux-amd64 ZOmGe1On…, linux-arm64 sYL/O6Mq…,
 * darwin-amd64 7/9KPPN8…, darwin-arm64 dFjGhY6f…). go1.26.8 is the Go on CI's PATH (its
 * official build: the same bytes), so a fetched one builds what CI tests; `go mod download -json
 * golang.org/toolchain@v0.0.1-<version>.<os>-<arch>` gives the zip for a new pin.
 */
export const GO_TOOLCHAIN: GoToolchain = {
  version: "go1.26.8",
  sha256: {
    "linux-amd64": "30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7",
    "linux-arm64": "02b36b6787b3ac767668f630e2998df45a3b1f9ffee08d1bf3ef6487cd658d99",
    "darwin-amd64": "fe99a2009e5bb51e06d7784f1a486478673512041c2671157bd382806e2aedcf",
    "darwin-arm64": "0aad5fb52b88498885290178adc0bcfe429bc63012621af9f83282eb640bd9c7",
  },
};

const CONTROL_PLANE_MODULES = join(import.meta.dirname, "control-plane");
const run = promisify(execFile);

/** Where fetched tools live: the control plane's cache root (ECR_ANYWHERE_CACHE, else XDG's). */
export function toolCache(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.ECR_ANYWHERE_CACHE || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "ecr-anywhere")
  );
}

/** The command that starts moto_server: the one on PATH, else the pinned one (installed once). */
export const ensureMotoServer = once(async (): Promise<readonly string[]> => {
  const onPath = findOnPath("moto_server");
  if (onPath) {
    announce(`moto_server: using ${onPath} from PATH`);
    return [onPath];
  }
  const venv = join(toolCache(), `moto-${MOTO_VERSION}`);
  // The venv's interpreter, not its moto_server script: the script's #! names the folder it was
  // installed in, and the venv is installed beside its final place, then moved there.
  const python = join(venv, "bin", "python");
  if (!existsSync(python)) await installMoto(venv);
  return [python, "-m", "moto.server"];
});

async function installMoto(venv: string): Promise<void> {
  announce(
    `moto_server: installing moto[server] ${MOTO_VERSION} from PyPI into ${tildify(venv)} (first time only, about a minute)`,
  );
  const started = performance.now();
  const partial = `${venv}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  try {
    await run("python3", ["-m", "venv", partial]).catch((error: Error) => {
      throw new Error(
        `python3 -m venv failed (Python 3 with its venv module is needed; on Debian and Ubuntu: apt install python3-venv): ${error.message}`,
      );
    });
    await run(join(partial, "bin", "python"), [
      "-m",
      "pip",
      "install",
      "--quiet",
      `moto[server]==${MOTO_VERSION}`,
    ]);
    await moveIntoPlace(partial, venv);
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  announce(`moto_server: installed in ${seconds(performance.now() - started)}`);
}

/** The `go` to build the control plane with: PATH's if new enough, else the pinned toolchain. */
export const ensureGo = once(async (): Promise<string> => {
  const needed = neededGoVersion();
  const onPath = findOnPath("go");
  if (onPath) {
    const version = await goVersion(onPath);
    if (version && compareGoVersions(version, needed) >= 0) return onPath;
    announce(
      `go: ${onPath} is ${version ?? "of unknown version"}; testbed/control-plane needs ${needed}`,
    );
  }
  if (compareGoVersions(GO_TOOLCHAIN.version, needed) < 0)
    throw new Error(
      `testbed/control-plane needs ${needed}, newer than the pinned ${GO_TOOLCHAIN.version}: update GO_TOOLCHAIN in testbed/tools.ts`,
    );
  return fetchGoToolchain(GO_TOOLCHAIN);
});

/**
 * The newest `go` line of the control-plane modules that name no `toolchain` (those that do are
 * built with theirs, which GOTOOLCHAIN fetches once any Go >= 1.21 runs).
 */
export function neededGoVersion(modules = CONTROL_PLANE_MODULES): string {
  const versions = readdirSync(modules).flatMap((module) => {
    const file = join(modules, module, "go.mod");
    if (!existsSync(file)) return [];
    const goMod = readFileSync(file, "utf8");
    if (/^toolchain /m.test(goMod)) return [];
    const go = /^go (\S+)$/m.exec(goMod)?.[1];
    return go ? [`go${go}`] : [];
  });
  return versions.sort(compareGoVersions).at(-1) ?? "go1.21.0";
}

/** Orders release versions (`go1.26`, `go1.26.8`); a missing patch counts as 0. */
export function compareGoVersions(a: string, b: string): number {
  const parts = (version: string) =>
    (/^go(\d+)\.(\d+)(?:\.(\d+))?/.exec(version) ?? [])
      .slice(1, 4)
      .map((part) => Number(part ?? 0));
  const [left, right] = [parts(a), parts(b)];
  for (let index = 0; index < 3; index++) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/**
 * Where cmd/go downloads a toolchain from (toolchain.Exec): the module `golang.org/toolchain` at
 * `v0.0.1-<go version>.<GOOS>-<GOARCH>`, from GOPROXY's first entry.
 */
export function toolchainZipUrl(version: string, platform: string, goproxy?: string): string {
  const first = (goproxy || "https://proxy.golang.org").split(/[,|]/)[0]?.trim() ?? "";
  if (!/^https?:\/\//.test(first))
    throw new Error(
      `GOPROXY=${goproxy}: its first entry is not an HTTP(S) module proxy, which a Go toolchain is fetched from here (or install Go ${neededGoVersion()} or newer yourself)`,
    );
  return `${first.replace(/\/+$/, "")}/golang.org/toolchain/@v/v0.0.1-${version}.${platform}.zip`;
}

export interface GoToolchain {
  readonly version: string;
  /** The module zip's SHA-256 per `<GOOS>-<GOARCH>`. */
  readonly sha256: Record<string, string | undefined>;
}

/** Fetches (first time only) and unpacks a pinned toolchain; returns its `go`. */
export async function fetchGoToolchain(
  { version, sha256 }: GoToolchain,
  cache = toolCache(),
  goproxy = process.env.GOPROXY,
): Promise<string> {
  const platform = goPlatform();
  const dir = join(cache, `${version}.${platform}`);
  const go = join(dir, "bin", "go");
  if (existsSync(go)) return go;
  const pinned = sha256[platform];
  if (!pinned)
    throw new Error(`no pinned Go toolchain for ${platform}: install Go ${version} or newer`);
  const url = toolchainZipUrl(version, platform, goproxy);
  announce(
    `go: fetching ${version} (the golang.org/toolchain module, about 70 MB) from ${url} into ${tildify(dir)} (first time only)`,
  );
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const zip = new Uint8Array(await response.arrayBuffer());
  const actual = createHash("sha256").update(zip).digest("hex");
  if (actual !== pinned)
    throw new Error(`${url}: SHA-256 ${actual}, not the pinned ${pinned}: refusing to run it`);
  const partial = `${dir}.partial-${process.pid}`;
  try {
    await unpackToolchain(zip, `golang.org/toolchain@v0.0.1-${version}.${platform}/`, partial);
    await moveIntoPlace(partial, dir);
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  announce(`go: ${(await goVersion(go)) ?? "the fetched go does not run"} in ${tildify(dir)}`);
  return go;
}

/**
 * A module zip holds the Go distribution under `<module>@<version>/`, without file modes and with
 * nested go.mod files renamed `_go.mod`: undone here as cmd/go undoes them.
 */
async function unpackToolchain(zip: Uint8Array, prefix: string, into: string): Promise<void> {
  for (const [name, data] of Object.entries(unzipSync(zip))) {
    if (name.endsWith("/")) continue;
    const path = name.startsWith(prefix) ? name.slice(prefix.length) : "";
    if (!path || path.split("/").includes("..")) throw new Error(`unexpected zip entry ${name}`);
    const target = join(into, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, data);
    if (path.endsWith("/_go.mod") || path === "_go.mod")
      await copyFile(target, join(dirname(target), "go.mod"));
  }
  for (const executables of ["bin", "pkg/tool"])
    for (const file of await readdir(join(into, executables), {
      recursive: true,
      withFileTypes: true,
    }))
      if (file.isFile()) await chmod(join(file.parentPath, file.name), 0o755);
}

/** Moves a finished install into place; if another process got there first, keeps theirs. */
async function moveIntoPlace(partial: string, final: string): Promise<void> {
  await mkdir(dirname(final), { recursive: true });
  await rename(partial, final).catch((error: NodeJS.ErrnoException) => {
    if (!existsSync(final)) throw error;
  });
}

async function goVersion(go: string): Promise<string | undefined> {
  const { stdout } = await run(go, ["env", "GOVERSION"], {
    env: { ...process.env, GOTOOLCHAIN: "local" },
  }).catch(() => ({ stdout: "" }));
  return stdout.trim() || undefined;
}

/** `<GOOS>-<GOARCH>` of this machine, as toolchain module versions name it. */
export function goPlatform(): string {
  const arch = { x64: "amd64", arm64: "arm64" }[process.arch as string] ?? process.arch;
  return `${process.platform}-${arch}`;
}

/** The program a shell would run for `name`, or undefined. */
export function findOnPath(name: string, path = process.env.PATH ?? ""): string | undefined {
  return path
    .split(delimiter)
    .map((dir) => join(dir || ".", name))
    .find((candidate) => {
      try {
        accessSync(candidate, constants.X_OK);
        return statSync(candidate).isFile();
      } catch {
        return false;
      }
    });
}

function announce(text: string): void {
  process.stderr.write(`${text}\n`);
}

function tildify(path: string): string {
  const fromHome = relative(homedir(), path);
  return fromHome.startsWith("..") ? path : join("~", fromHome);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A function run at most once per process; every caller shares its answer. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let answer: Promise<T> | undefined;
  return () => {
    answer ??= make();
    return answer;
  };
}
