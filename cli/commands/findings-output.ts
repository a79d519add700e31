/** How `preflight` and `doctor` show their findings: a table, or JSON; exit 1 on any problem. */
import { sanitize } from "../../functions/core/sanitize.ts";
import type { Finding } from "../core/findings.ts";
import type { Factory } from "../factory.ts";
import { table } from "../ui.ts";

export function printFindings(
  factory: Factory,
  findings: readonly Finding[],
  extra: Record<string, unknown> = {},
): void {
  const ok = findings.every((finding) => finding.ok);
  factory.printer.result({ ok, ...extra, findings }, () => {
    const rows = findings.map((finding) =>
      // AWS's and the function URL's words: printable text only on a terminal.
      [finding.ok ? "ok" : "PROBLEM", finding.check, finding.detail].map((cell) =>
        sanitize(cell, 1024),
      ),
    );
    const fixes = findings
      .filter((finding) => !finding.ok && finding.fix)
      .map((finding) => sanitize(`fix (${finding.check}): ${finding.fix}`, 2048));
    return `${[table(["", "CHECK", "FOUND"], rows), ...(fixes.length > 0 ? ["", ...fixes] : [])].join("\n")}\n`;
  });
  if (!ok) process.exitCode = 1;
}
