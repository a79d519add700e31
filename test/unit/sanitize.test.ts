/** The one sanitiser: printable, one line, bounded in bytes, whatever a cluster sends. */
import { describe, expect, it } from "vitest";
import {
  boundProblems,
  MAX_PROBLEM_BYTES,
  sanitize,
  truncateUtf8,
} from "../../functions/core/sanitize.ts";

describe("sanitize", () => {
  it("removes terminal escapes, bidirectional overrides and line breaks", () => {
    const osc52 = "\u001b]52;c;ZWNobyBwd25lZA==\u0007";
    const cleaned = sanitize(`ns-${osc52}a\r\nb\u202Egnp.exe\u0000`);
    const unprintable = [...cleaned].filter((character) => {
      const code = character.codePointAt(0) ?? 0;
      return code < 0x20 || (code >= 0x7f && code <= 0x9f) || (code >= 0x202a && code <= 0x202e);
    });
    expect(unprintable).toEqual([]);
    expect(cleaned).toBe("ns-?]52;c;ZWNobyBwd25lZA==?a b?gnp.exe?");
  });

  it("removes invisible and line-breaking format characters, tags included", () => {
    expect(sanitize("a\u2028b\u2029c\u00add\u2060e\u{e0041}f\ufffbg")).toBe("a?b?c?d?e?f?g");
  });

  it("bounds by UTF-8 bytes, never splitting a character", () => {
    const long = "é".repeat(2000);
    const cut = sanitize(long);
    expect(Buffer.byteLength(cut, "utf8")).toBeLessThanOrEqual(MAX_PROBLEM_BYTES);
    expect(cut.endsWith("…")).toBe(true);
    expect(cut).not.toContain("\ufffd");
    expect(truncateUtf8("😀😀😀", 9)).toBe("😀…");
    expect(truncateUtf8("short", 9)).toBe("short");
  });

  it("keeps at most the bound of problems and says how many more there were", () => {
    const problems = Array.from({ length: 50 }, (_, index) => `problem ${index}`);
    const bounded = boundProblems(problems, 20);
    expect(bounded).toHaveLength(20);
    expect(bounded.at(-1)).toBe("… and 31 more problems");
    expect(boundProblems(["a\nb"], 20)).toEqual(["a b"]);
  });
});

describe("a cluster's report", () => {
  it("carries at most 20 problems of at most 512 bytes, whatever the API server said", async () => {
    const { failedReport } = await import("../../functions/refresher/refresh-cluster.ts");
    const report = failedReport("hostile", Array(50).fill(`\u001b[2J${"x".repeat(100_000)}`));
    expect(report.problems).toHaveLength(20);
    for (const problem of report.problems) {
      expect(Buffer.byteLength(problem, "utf8")).toBeLessThanOrEqual(512);
      expect(problem).not.toContain("\u001b");
    }
  });
});
