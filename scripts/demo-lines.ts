/**
 * What `npm run demo` prints about itself, apart from the story: each step's own time, progress
 * while a step runs long (the control plane's first build takes minutes), and the onboard command
 * it suggests for a real cluster. Pure, so the wording is tested (test/unit/demo-lines.test.ts).
 */

/** How often a long step says it is still going. */
export const PROGRESS_EVERY_MS = 10_000;

/** `4.2 s`, or `8 min 3 s` from a minute on. */
export function duration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/** A finished step with its own duration. */
export function stepLine(done: string, ms: number): string {
  return `  ${done} (${duration(ms)})`;
}

/** A step still running: what it is doing, and for how long so far. */
export function progressLine(doing: string, ms: number): string {
  return `    · ${doing}: ${duration(ms)} so far`;
}

/**
 * What scripts/build-control-plane.sh is building, from its stderr ("building kube-apiserver from
 * … (first time only …)" … "built kube-apiserver in 412 s"), and since when.
 */
export class BuildWatch {
  readonly #now: () => number;
  #building: { readonly what: string; readonly since: number } | undefined;
  /** The start of a line whose end is still to come: output arrives in chunks. */
  #partial = "";

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  observe(text: string): void {
    const lines = (this.#partial + text).split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) {
      const started = /^building (\S+) from (\S+)/.exec(line);
      if (started)
        this.#building = { what: `building ${started[1]} (${started[2]})`, since: this.#now() };
      else if (/^built \S+/.test(line)) this.#building = undefined;
    }
  }

  /** The progress line for the binary being built, or undefined between binaries. */
  progress(): string | undefined {
    return this.#building && progressLine(this.#building.what, this.#now() - this.#building.since);
  }
}

/**
 * The onboard command for your own cluster and stack, placeholders in angle brackets: every flag a
 * real onboard needs (the stack gives the webhook URL and record key; a token in the webhook URL
 * needs the API server's egress addresses).
 */
export const REAL_CLUSTER_ONBOARD = [
  "onboard",
  "<id>",
  "--registries",
  "<hosts>",
  "--namespaces",
  "<namespaces>",
  "--allowed-source-cidrs",
  "<api-server-egress-cidrs>",
  "--context",
  "<context>",
] as const;
