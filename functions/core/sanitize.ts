/**
 * The one sanitiser for text that came from outside: an API server's messages, a cluster's names,
 * an AWS error. Whatever a hostile cluster sends, what reaches a log line, a terminal or an Event is
 * one line of printable text of bounded size. Pure.
 */

/** Bytes one problem may take in a log line, an Event note or a terminal. */
export const MAX_PROBLEM_BYTES = 512;
/** Problems one log line may carry; the rest are counted. */
export const MAX_PROBLEMS = 20;

// C0 and C1 controls (escape sequences start with ESC or CSI), DEL, and the Unicode format
// characters that reorder, hide or break text on a terminal: the soft hyphen, the Mongolian vowel
// separator, zero-width characters and joiners, line and paragraph separators, bidirectional
// marks, overrides and isolates, invisible operators, the BOM, interlinear annotations, and tags.
const UNPRINTABLE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb\u{e0000}-\u{e007f}]/gu;

/** `text` as one printable line of at most `maxBytes` UTF-8 bytes ("…" marks a cut). */
export function sanitize(text: string, maxBytes = MAX_PROBLEM_BYTES): string {
  const line = text.replace(/\r\n|\r|\n|\t/g, " ").replace(UNPRINTABLE, "?");
  return truncateUtf8(line, maxBytes);
}

/** Each problem sanitised, at most `max` of them: the last one says how many were left out. */
export function boundProblems(problems: readonly string[], max = MAX_PROBLEMS): string[] {
  if (problems.length <= max) return problems.map((problem) => sanitize(problem));
  const kept = problems.slice(0, max - 1).map((problem) => sanitize(problem));
  return [...kept, `… and ${problems.length - kept.length} more problems`];
}

const ELLIPSIS = "…";

/**
 * At most `maxBytes` UTF-8 bytes, cut on a character boundary. Byte counts are what limits are
 * made of (kube-apiserver refuses an Event note over 1,024 bytes, not characters).
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, "utf8") <= maxBytes) return text;
  const budget = maxBytes - Buffer.byteLength(ELLIPSIS, "utf8");
  let bytes = 0;
  let end = 0;
  for (const character of text) {
    const size = Buffer.byteLength(character, "utf8");
    if (bytes + size > budget) break;
    bytes += size;
    end += character.length;
  }
  return `${text.slice(0, end)}${ELLIPSIS}`;
}
