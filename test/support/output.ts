/** Captures what the code under test writes to stdout and stderr: logs and EMF metrics. */
export interface CapturedOutput {
  readonly lines: string[];
  text(): string;
  /** Parsed JSON lines (Powertools logs and EMF documents). */
  json(): Record<string, unknown>[];
  /** Sum of one EMF metric across every document written so far. */
  metric(name: string): number;
  clear(): void;
  restore(): void;
}

export function captureOutput(): CapturedOutput {
  const lines: string[] = [];
  const originals = { stdout: process.stdout.write, stderr: process.stderr.write };
  const capture = ((chunk: string | Uint8Array) => {
    lines.push(
      ...String(chunk)
        .split("\n")
        .filter((line) => line.length > 0),
    );
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = capture;
  process.stderr.write = capture;
  const json = () =>
    lines.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  return {
    lines,
    text: () => lines.join("\n"),
    json,
    metric: (name) =>
      json()
        .filter((document) => document._aws !== undefined)
        .flatMap((document) => [document[name]].flat())
        .reduce((sum: number, value) => sum + (typeof value === "number" ? value : 0), 0),
    clear: () => {
      lines.length = 0;
    },
    restore: () => {
      process.stdout.write = originals.stdout;
      process.stderr.write = originals.stderr;
    },
  };
}
