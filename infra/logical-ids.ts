/**
 * Logical IDs that ignore the EcrAnywhere construct's parts (webhook, refresher, monitoring): the
 * resources keep the IDs they had before the construct was split, so a deployed stack updates in
 * place instead of replacing its function (and with it the function URL every cluster calls), its
 * KMS key and its token table. CloudFormation identity is the logical ID; the path is not.
 */
import { createHash } from "node:crypto";
import type { CfnElement, Stack } from "aws-cdk-lib";

/** Construct ids of the parts, left out of logical IDs. */
export const PART_IDS: ReadonlySet<string> = new Set([
  "WebhookPart",
  "RefresherPart",
  "MonitoringPart",
]);

/**
 * CDK's own rule (aws-cdk-lib core `makeUniqueId`, which is not exported), applied to the path
 * without the parts: human-readable components plus an 8-character hash of the path.
 */
export function logicalIdWithoutParts(stack: Stack, element: CfnElement): string {
  const scopes = element.node.scopes;
  const components = scopes
    .slice(scopes.indexOf(stack) + 1)
    .map((scope) => scope.node.id)
    .filter((id) => id !== "Default" && !PART_IDS.has(id));
  const alphanumeric = (text: string) => text.replace(/[^A-Za-z0-9]/g, "");
  if (components.length === 1 && alphanumeric(components[0] ?? "").length <= 255)
    return alphanumeric(components[0] ?? "");
  const hash = createHash("md5")
    .update(components.join("/"))
    .digest("hex")
    .slice(0, 8)
    .toUpperCase();
  const human: string[] = [];
  for (const component of components)
    if (human.length === 0 || !(human.at(-1) ?? "").endsWith(component)) human.push(component);
  return (
    human
      .filter((component) => component !== "Resource")
      .map(alphanumeric)
      .join("")
      .slice(0, 240) + hash
  );
}
