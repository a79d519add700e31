import * as v from "valibot";

/**
 * Describes schema issues by location and expectation only. The received value is left out on
 * purpose: inputs here hold kubeconfigs, tokens and Secret data, which must never reach a log line
 * or a response.
 */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[], limit = 5): string {
  const described = issues.slice(0, limit).map((issue) => {
    const path = v.getDotPath(issue) ?? "(root)";
    if (issue.received === "undefined") return `${path}: missing`;
    // A check's message is the project's own words (what is expected), never the value.
    if (issue.type === "check") return `${path}: ${issue.message}`;
    return issue.expected === null ? `${path}: invalid` : `${path}: expected ${issue.expected}`;
  });
  const more = issues.length > limit ? `; and ${issues.length - limit} more` : "";
  return described.join("; ") + more;
}

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string };

export function parseWith<const TSchema extends v.GenericSchema>(
  schema: TSchema,
  input: unknown,
): Parsed<v.InferOutput<TSchema>> {
  const result = v.safeParse(schema, input);
  return result.success
    ? { ok: true, value: result.output }
    : { ok: false, error: describeIssues(result.issues) };
}

/** JSON.parse that reports failure instead of throwing, without echoing the input. */
export function parseJson(text: string): Parsed<unknown> {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, error: "not valid JSON" };
  }
}
