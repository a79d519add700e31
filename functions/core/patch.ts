/** JSON Patch (RFC 6902) for a Secret: the webhook's only way of changing what gets stored. Pure. */
import type { SecretObject } from "./secret.ts";

export interface JsonPatchOperation {
  readonly op: "add";
  readonly path: string;
  readonly value: unknown;
}

/** RFC 6901: `~` and `/` inside a member name become `~0` and `~1`. */
export function escapePointerSegment(segment: string): string {
  return segment.replaceAll("~", "~0").replaceAll("/", "~1");
}

export interface SecretChanges {
  readonly data: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/**
 * Operations that set the given data keys and annotations and touch nothing else. `add` on an
 * existing member replaces it; a missing `data` or `metadata.annotations` map is created whole,
 * because JSON Patch cannot add a member to a parent that does not exist.
 */
export function buildSecretPatch(
  secret: SecretObject,
  changes: SecretChanges,
): JsonPatchOperation[] {
  return [
    ...setMembers(secret.data, "/data", changes.data),
    ...(secret.metadata === undefined
      ? [
          {
            op: "add" as const,
            path: "/metadata",
            value: { annotations: { ...changes.annotations } },
          },
        ]
      : setMembers(secret.metadata.annotations, "/metadata/annotations", changes.annotations)),
  ];
}

function setMembers(
  existing: Readonly<Record<string, string>> | null | undefined,
  parentPath: string,
  members: Readonly<Record<string, string>>,
): JsonPatchOperation[] {
  if (existing === undefined || existing === null) {
    return Object.keys(members).length === 0
      ? []
      : [{ op: "add", path: parentPath, value: { ...members } }];
  }
  return Object.entries(members).map(([name, value]) => ({
    op: "add",
    path: `${parentPath}/${escapePointerSegment(name)}`,
    value,
  }));
}
